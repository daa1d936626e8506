import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = fileURLToPath(new URL('./src/', import.meta.url));

export default defineConfig({
  resolve: {
    // the app (workers/, jobs/) imports the library by its package name; tests run it from source
    alias: [
      { find: /^sluice$/, replacement: `${src}index.ts` },
      { find: /^sluice\/([a-z]+)$/, replacement: `${src}$1/index.ts` },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One file at a time: the end-to-end files run four worker processes with Chromium, the
    // concurrency files fork load processes; on two cores a second file beside them is starved
    // and its timing-based claims would measure the machine, not Sluice.
    fileParallelism: false,
  },
});
