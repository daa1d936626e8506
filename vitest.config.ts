import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Concurrency tests fork OS processes; two cores cannot also run many files at once.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
