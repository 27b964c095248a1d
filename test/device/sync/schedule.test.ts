import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadState, watchSync } from '../../../agent/device';
import { createLogger } from '../../../agent/logger';
import { grow, testWorld } from '../../helpers/device';

describe('vouch sync --watch', () => {
  it('syncs now, then on every tick of the schedule, until stopped', async () => {
    const world = await testWorld();
    await grow(world, 2);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-watch-'));
    const stop = new AbortController();
    const sizes: number[] = [];
    const runs = await watchSync({
      stateDir: dir,
      mirrors: [world.mirror],
      rootPath: world.rootPath,
      timeoutMs: 5000,
      maxBundleBytes: 1 << 24,
      logger: createLogger('cli', 'silent'),
      schedule: '* * * * * *',
      jitterMs: 0,
      signal: stop.signal,
      onRun: (outcome) => {
        if (outcome instanceof Error) throw outcome;
        sizes.push(outcome.size);
        if (sizes.length === 1) void grow(world, 3);
        if (sizes.length === 3) stop.abort();
      },
    });
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(sizes[0]).toBe(2);
    expect(sizes.at(-1)).toBe(5);
    expect((await loadState(dir))?.checkpoint.checkpoint.size).toBe(5);
  });

  it('syncs without anyone listening (the CLI and the daemon pass no onRun), and logs each run', async () => {
    const world = await testWorld();
    await grow(world, 4);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-watch-'));
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 1500);
    const lines: { level: number; msg: string; size?: number }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const runs = await watchSync({
      stateDir: dir,
      mirrors: [world.mirror],
      rootPath: world.rootPath,
      timeoutMs: 5000,
      maxBundleBytes: 1 << 24,
      logger,
      schedule: '* * * * * *',
      jitterMs: 0,
      signal: stop.signal,
    });
    expect(runs).toBeGreaterThanOrEqual(1);
    expect((await loadState(dir))?.checkpoint.checkpoint.size).toBe(4);
    // A watch has no report on stdout: its log says each run (at info, the default level).
    expect(lines.filter((line) => line.msg === 'synced')).toHaveLength(runs);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'synced', size: 4 });
  });
});
