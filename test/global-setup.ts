import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Builds dist/ once, before any test file runs (vitest `globalSetup`): the tests that run
 * the bundle a device runs (`node dist/vouch.cjs`) share this one build, and none rebuilds
 * dist/ under another's running process.
 */
export default async function buildOnce(): Promise<void> {
  await promisify(execFile)('npm', ['run', 'build']);
}
