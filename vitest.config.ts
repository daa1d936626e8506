import { defineConfig } from 'vitest/config';

export default defineConfig({
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
