import { defineConfig } from 'tsup';

/**
 * The package's JavaScript: every entry point as ESM (`.js`) and CommonJS (`.cjs`). Types come
 * from `tsc -p tsconfig.build.json` (TypeScript 7 has no API for tsup's dts step); see
 * scripts/cjs-types.mjs for their CommonJS twins.
 */
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'bullmq/index': 'src/bullmq/index.ts',
    'inngest/index': 'src/inngest/index.ts',
    'admin/index': 'src/admin/index.ts',
    'metrics/index': 'src/metrics/index.ts',
    'http/index': 'src/http/index.ts',
  },
  format: ['esm', 'cjs'],
  outDir: 'dist',
  target: 'node20',
  platform: 'node',
  splitting: true,
  sourcemap: false,
  clean: true,
  // import.meta.url in the CommonJS build (the loader finds lua/ from it)
  shims: true,
  dts: false,
});
