/**
 * Runs the simulator for humans: `npx tsx workers/simulator/main.ts --port 4010 [--seed s]
 * [--creators n] [--limit hashtag=2/5 ...] [--factor 0.5]
 * [--api-refusal http429|http429-bare|verify|empty|empty-list|block-status|waf]
 * [--page-refusal captcha|empty|waf|http429|http429-bare]`. `--limit key=rate/burst` sets a hidden limit.
 */
import { parseArgs } from 'node:util';
import { SIM_KEYS, type Limits, type SimKey } from './limits.js';
import { API_REFUSALS, PAGE_REFUSALS, type ApiRefusal, type PageRefusal } from './refusals.js';
import { startSimulator } from './server.js';

function parseLimit(spec: string): [SimKey, { ratePerSec: number; burst: number }] {
  const m = /^(\w+)=([\d.]+)\/(\d+)$/.exec(spec);
  const key = m?.[1] as SimKey | undefined;
  if (!m || key === undefined || !SIM_KEYS.includes(key)) {
    throw new Error(`--limit "${spec}": expected key=rate/burst with key one of ${SIM_KEYS.join(', ')}`);
  }
  return [key, { ratePerSec: Number(m[2]), burst: Number(m[3]) }];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '4010' },
      host: { type: 'string', default: '127.0.0.1' },
      seed: { type: 'string', default: 'sluice' },
      creators: { type: 'string', default: '40' },
      limit: { type: 'string', multiple: true, default: [] },
      factor: { type: 'string', default: '1' },
      'api-refusal': { type: 'string', default: 'http429' },
      'page-refusal': { type: 'string', default: 'captcha' },
    },
  });
  const limits: Limits = Object.fromEntries(values.limit.map(parseLimit));
  const api = values['api-refusal'] as ApiRefusal;
  const page = values['page-refusal'] as PageRefusal;
  if (!API_REFUSALS.includes(api)) throw new Error(`--api-refusal "${api}": one of ${API_REFUSALS.join(', ')}`);
  if (!PAGE_REFUSALS.includes(page)) throw new Error(`--page-refusal "${page}": one of ${PAGE_REFUSALS.join(', ')}`);
  const sim = await startSimulator({
    host: values.host,
    port: Number(values.port),
    graph: { seed: values.seed, creators: Number(values.creators) },
    limits,
    limitFactor: Number(values.factor),
    refusals: { api, page },
  });
  const tag = sim.graph.hashtags[0];
  const creator = sim.graph.creators[0];
  console.log(`TikTok simulator listening on ${sim.url}`);
  console.log(`  creators ${sim.graph.creators.length}, videos ${sim.graph.videos.length}, hashtags ${sim.graph.hashtags.map((t) => t.name).join(', ')}`);
  if (tag) console.log(`  hashtag page  ${sim.url}/tag/${encodeURIComponent(tag.name)}`);
  if (creator) console.log(`  profile page  ${sim.url}/@${creator.handle}`);
  console.log(`  stats         ${sim.url}/__sim/stats`);
  const stop = (): void => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
