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
  return [flat.slice(0, HEADER), results(flat, resultsAt, resultsEnd), mailbox, flat.slice(mailboxEnd), String(flat[HEADER] ?? '')];
}

/**
 * The results, five values per request: a bundle's other requests (status 2: `id, 2, count`) are
 * given as queued (status 1) in the ticket of the entry before them, so a reader meets one form.
 */
function results(flat: unknown[], from: number, to: number): unknown[] {
  const out: unknown[] = [];
  for (let i = from; i < to; i += 5) {
    if (flat[i + 1] !== 2) {
      out.push(flat[i], flat[i + 1], flat[i + 2], flat[i + 3], flat[i + 4]);
      continue;
    }
    const first = Number(flat[i]);
    const n = Number(flat[i + 2]);
    const [member, eta, tag] = out.slice(-3);
    for (let k = 0; k < n; k++) out.push(first + k, 1, member, eta, tag);
  }
  return out;
}
