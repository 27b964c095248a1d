import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import * as pool from '../../../agent/content/pool';
import { merkleLeafSize } from '../../../agent/core/statement';
import type { Health } from '../../../agent/device/agent/health';
import { IdlePool } from '../../../agent/device/agent/idle-pool';
import { waitFor } from '../../../scripts/lib/services';

// plannedPool as it is, but a test can make one start fail.
vi.mock('../../../agent/content/pool', async (original) => {
  const actual = await original<typeof pool>();
  return { ...actual, plannedPool: vi.fn(actual.plannedPool) };
});

const dir = mkdtempSync(join(tmpdir(), 'vouch-idle-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const data = new Uint8Array(3 * merkleLeafSize + 7).map((_, i) => i % 251);
const file = join(dir, 'file');
writeFileSync(file, data);
const sha256 = createHash('sha256').update(data).digest('hex');

let hashing: IdlePool;
const changes: Health[] = [];
afterEach(async () => {
  await hashing?.stop();
  changes.length = 0;
  vi.mocked(pool.plannedPool).mockClear();
});

function idlePool(idleMs: number): IdlePool {
  hashing = new IdlePool({ idleMs, onHealth: (health) => changes.push(health) });
  return hashing;
}

/** Resolves when every worker of `threads` has exited. */
function exited(threads: readonly Worker[]): Promise<void> {
  let left = threads.length;
  return new Promise((resolve) => {
    for (const worker of threads) {
      worker.once('exit', () => {
        if (--left === 0) resolve();
      });
    }
  });
}

describe('IdlePool', () => {
  it('starts the workers on first use, closes them once idle, starts them again on the next', async () => {
    const hashing = idlePool(200);
    await hashing.start();
    expect(hashing.name).toBe('hashing');
    expect(hashing.health).toMatchObject({ state: 'ok', reason: 'idle (no workers)' });
    // The plan is read at start, for /v1/status; no worker runs before the first use.
    expect(hashing.plan()?.workers).toBeGreaterThan(0);

    let threads: readonly Worker[] = [];
    let first: pool.HashPool | undefined;
    const digest = await hashing.use(async (running) => {
      first = running;
      threads = [...running.threads];
      return running.hash(file);
    });
    expect(digest).toEqual({ sha256, size: data.length });
    // Sized by the plan with two workers at least, all booted for a chunked digest.
    const plan = hashing.plan();
    expect(plan?.reasons.length).toBeGreaterThan(0);
    expect(threads).toHaveLength(Math.max(2, plan?.workers ?? 0));
    expect(hashing.health.reason).toBe(`${threads.length} workers`);

    // A use within idleMs keeps the same pool; its end starts the wait again.
    const gone = exited(threads);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await hashing.use(async (running) => running === first)).toBe(true);
    const used = Date.now();
    await gone;
    expect(Date.now() - used).toBeGreaterThanOrEqual(190);
    await waitFor('idle health', async () => hashing.health.reason === 'idle (no workers)', 2000);

    const chunked = await hashing.use(async (running) => {
      expect(running).not.toBe(first);
      expect(running.threads.every((worker) => !threads.includes(worker))).toBe(true);
      return running.hashChunked(file, merkleLeafSize);
    });
    expect(chunked).toMatchObject({ chunks: 4, size: data.length });
    expect(pool.plannedPool).toHaveBeenCalledTimes(2);
    // Stays ok throughout: only the reason changed.
    expect(changes).toEqual([]);
  });

  it('shares one starting pool between concurrent first uses', async () => {
    const hashing = idlePool(60_000);
    const seen = await Promise.all([1, 2, 3].map(() => hashing.use(async (running) => running)));
    expect(new Set(seen).size).toBe(1);
    expect(pool.plannedPool).toHaveBeenCalledTimes(1);
    expect(
      await Promise.all([hashing.use((p) => p.hash(file)), hashing.use((p) => p.hash(file))]),
    ).toEqual([
      { sha256, size: data.length },
      { sha256, size: data.length },
    ]);
  });

  it('stop() closes the pool: jobs under way fail, and uses until the next start()', async () => {
    const hashing = idlePool(60_000);
    const large = join(dir, 'large');
    writeFileSync(large, '');
    truncateSync(large, 2 ** 30);
    let threads: readonly Worker[] = [];
    let progressed: () => void = () => {};
    const hashed = new Promise<void>((resolve) => {
      progressed = resolve;
    });
    const running = hashing.use((p) => {
      threads = [...p.threads];
      return p.hashChunked(large, merkleLeafSize, progressed);
    });
    running.catch(() => {});
    await hashed;
    const gone = exited(threads);
    await hashing.stop();
    await gone;
    await expect(running).rejects.toThrow('the hash pool was closed');
    expect(hashing.health.reason).toBe('idle (no workers)');
    await expect(hashing.use(async () => 1)).rejects.toThrow('hashing has stopped');
    await hashing.start();
    expect(await hashing.use((p) => p.hash(file))).toEqual({ sha256, size: data.length });
  });

  it('is failed while a pool cannot start, and tries again on the next use', async () => {
    const hashing = idlePool(60_000);
    vi.mocked(pool.plannedPool).mockRejectedValueOnce(new Error('no threads left'));
    await expect(hashing.use((p) => p.hash(file))).rejects.toThrow('no threads left');
    expect(hashing.health).toMatchObject({
      state: 'failed',
      reason: 'cannot start the hash workers: no threads left',
    });
    expect(await hashing.use((p) => p.hash(file))).toEqual({ sha256, size: data.length });
    expect(hashing.health.state).toBe('ok');
    expect(changes.map((health) => health.state)).toEqual(['failed', 'ok']);
  });
});
