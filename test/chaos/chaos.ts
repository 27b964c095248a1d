import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { verdictFor } from '../../agent/device';
import { digestOf, stateOf } from '../helpers/device';

/**
 * The chaos suite's knobs (docs/security.md "Chaos suite"): `npm test` runs each file with
 * small counts; `VOUCH_CHAOS=full` (npm run test:chaos) with the full ones. Random choices
 * come from one seed, printed, and taken from VOUCH_CHAOS_SEED to replay a run.
 */
export const full = process.env.VOUCH_CHAOS === 'full';

/** `small` in `npm test`, `large` in the full run. */
export function count(small: number, large: number): number {
  return full ? large : small;
}

/**
 * A seeded generator (mulberry32: small, and good enough to spread kill points), one per
 * test file so that a file replays alone; its seed printed with `what`.
 */
export function random(what: string): () => number {
  const given = process.env.VOUCH_CHAOS_SEED;
  let seed = given ? Number(given) >>> 0 : Math.floor(Math.random() * 2 ** 32);
  console.log(`chaos ${what}: seed ${seed} (VOUCH_CHAOS_SEED=${seed} replays it)`);
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A copy of a directory in a new temp directory. */
export async function copyOf(dir: string, prefix = 'vouch-chaos-'): Promise<string> {
  const copy = await mkdtemp(join(tmpdir(), prefix));
  await cp(dir, copy, { recursive: true });
  return copy;
}

/** `node ARGS…` in a process group of its own (so that a kill reaches its children too). */
export function spawnNode(args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, args, {
    stdio: 'ignore',
    detached: true,
    ...(env && { env: { ...process.env, ...env } }),
  });
}

/** kill -9 of the child's process group; resolves once the child has exited. */
export async function killGroup(child: ChildProcess): Promise<void> {
  const exited = child.exitCode === null && child.signalCode === null && once(child, 'exit');
  try {
    process.kill(-(child.pid as number), 'SIGKILL');
  } catch {
    // The group is gone already.
  }
  await exited;
}

/** Runs `child` to its end; its exit code. */
export async function finished(child: ChildProcess): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  return child.exitCode;
}

/**
 * The state in `dir` loads, verifies, holds one of `sizes`, and answers as the log at that
 * size does: statements 0 … size−1 TRUSTED (the world's statements are), the next UNKNOWN.
 */
export async function expectOneOf(dir: string, sizes: readonly number[], what: string) {
  const state = await stateOf(dir);
  const size = state.checkpoint.checkpoint.size;
  expect(sizes, what).toContain(size);
  expect(state.index.rows, what).toBe(size);
  const now = Date.now();
  for (const i of [0, size - 1, size]) {
    if (i < 0) continue;
    const verdict = verdictFor(state, digestOf(i), now);
    expect('status' in verdict && verdict.status, `${what}: statement ${i}`).toBe(
      i < size ? 'TRUSTED' : 'UNKNOWN',
    );
  }
  return size;
}
