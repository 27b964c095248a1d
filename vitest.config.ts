import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    globalSetup: ['./test/global-setup.ts'],
    // Integration tests start real daemons (dockerd takes a few seconds on vfs).
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
