// Writes a CommonJS twin (`.d.cts`) of every declaration file in dist/, so `require('sluice')`
// gets types that TypeScript reads as CommonJS (tsc emits `.d.ts` only, read as ESM in a
// `"type": "module"` package). Relative specifiers `./x.js` become `./x.cjs`.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const RELATIVE = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.js(['"])/g;

function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.name.endsWith('.d.ts')) writeFileSync(path.replace(/\.d\.ts$/, '.d.cts'), readFileSync(path, 'utf8').replace(RELATIVE, '$1$2.cjs$3'));
  }
}
walk('dist');
