import calculateSlot from 'cluster-key-slot';
import { bullmqPrefix } from '../src/bullmq/index.js';
import { ResultKeys } from '../workers/results/keys.js';
import { describe, expect, it } from 'vitest';
import { InvalidNameError } from '../src/index.js';
import { assertName, Keys } from '../src/keys.js';
import { script, scripts } from '../src/redis/scripts.js';

describe('keys', () => {
  const keys = new Keys('fleet-1');
  const endpoint = 'tiktok.profile';

  it('puts every throttle key of a namespace, including every key a script declares, in one Cluster slot', () => {
    const all = [
      ...keys.script(endpoint), keys.leases(), keys.global(), keys.tenants(), keys.tenantConfig(),
      keys.stats(endpoint), keys.audit(), keys.endpoints(), keys.live(),
    ];
    const slots = new Set(all.map((k) => calculateSlot(k)));
    expect(slots.size).toBe(1);
    expect([...slots][0]).toBe(calculateSlot('{fleet-1}'));
  });

  it('gives each script exactly the keys its file name declares', () => {
    expect(script('acquire').numberOfKeys).toBe(keys.script(endpoint).length);
    expect(script('cancel').numberOfKeys).toBe(keys.script(endpoint).length);
    expect(script('penalize').numberOfKeys).toBe(2);
    // -n: the key count goes with each call (one key per item of a batch)
    expect(script('httpLimit').numberOfKeys).toBeUndefined();
    for (const s of scripts().values()) {
      expect(s.command).toMatch(new RegExp(`^${s.verb}:[0-9a-f]{8}$`));
      expect(s.source).not.toMatch(/@include/);
    }
  });

  it('gives results and BullMQ their own tags, away from the throttle slot', () => {
    expect(bullmqPrefix(keys.namespace)).toBe('sluice:{fleet-1:bull}');
    const results = new ResultKeys(keys.namespace);
    expect(calculateSlot(results.profileDomains('a'))).toBe(calculateSlot(results.domainIndex()));
  });

  it.each([
    ['', 'empty'],
    ['{tag}', 'braces'],
    ['a}b', 'a closing brace'],
    ['a|b', 'the member separator'],
    ['a b', 'a space'],
    ['x'.repeat(129), 'too long'],
    ['tab\there', 'a control character'],
  ])('refuses the name %j (%s) with a clear error', (name) => {
    expect(() => assertName('tenant', name)).toThrow(InvalidNameError);
    expect(() => assertName('tenant', name)).toThrow(/tenant name .* is not valid/);
  });

  it('accepts unicode and punctuation that cannot break a key', () => {
    expect(assertName('tenant', 'café-über.eu:1')).toBe('café-über.eu:1');
  });
});
