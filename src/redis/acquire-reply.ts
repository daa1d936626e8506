/**
 * The acquire script's reply, one flat array (lua/acquire-9.lua: Redis converts every table of a
 * reply with lookups of its own, so the script sends one), split back into its parts:
 * `[header, results, mailbox, lost, audit]`.
 *
 * A promotion the run itself handed to the caller comes as an integer in millionths (no sprintf in
 * Lua), a bundle's as an array of them; they are given here as the decimal strings a posted one
 * has ('a,b,c' for a bundle), so a reader meets one form.
 */
export type AcquireReply = [header: unknown[], results: unknown[], mailbox: unknown[], lost: unknown[], audit: string];

const HEADER = 10;

export function splitAcquireReply(flat: unknown[]): AcquireReply {
  const resultsAt = HEADER + 2;
  const resultsEnd = resultsAt + Number(flat[HEADER + 1]);
  const mailboxEnd = resultsEnd + 1 + Number(flat[resultsEnd]);
  const mailbox = flat.slice(resultsEnd + 1, mailboxEnd);
  for (let i = 1; i < mailbox.length; i += 2) {
    const v = mailbox[i];
    if (typeof v === 'number') mailbox[i] = String(v / 1e6);
    // a bundle's slots (see fairQueue.lua), as a posted bundle's: comma-separated
    else if (Array.isArray(v)) mailbox[i] = v.map((x) => (x as number) / 1e6).join(',');
  }
  return [flat.slice(0, HEADER), flat.slice(resultsAt, resultsEnd), mailbox, flat.slice(mailboxEnd), String(flat[HEADER] ?? '')];
}
