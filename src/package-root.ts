import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root folder (the one holding `lua/`), found by walking up from this module: the
 * sources run from `src/…` and the built package from `dist/…`, at different depths.
 */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'lua', 'includes'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`sluice: cannot find its lua/ folder above ${dirname(fileURLToPath(import.meta.url))}; is the package installed whole?`);
    dir = parent;
  }
}

export const PACKAGE_ROOT = findRoot();
