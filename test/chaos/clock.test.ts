import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningAgent, startAgent, stopAgent } from '../device/agent/harness';
import { digestOf, grow, syncedDevice, testWorld, type World } from '../helpers/device';

/**
 * The clock jumping under a running agent: libfaketime (Debian `faketime`) preloaded into
 * `vouch agent`, its time read again from a file at every call (FAKETIME_TIMESTAMP_FILE,
 * FAKETIME_NO_CACHE), so the test moves the agent's wall clock while it runs; the monotonic
 * clock is left alone (DONT_FAKE_MONOTONIC: timers and timeouts keep working, as on a Pi
 * whose clock NTP sets). Ten years on, the checkpoint is stale: the device says so and a
 * verdict is never UNTRUSTED for it. Back to 1970 (a Pi without a clock battery before NTP),
 * the agent does not take its freshness back and does not crash. Back to now, it is healthy.
 */

/** Debian's multiarch path of the library (its threads-safe build: Node has threads). */
const library = ['x86_64-linux-gnu', 'aarch64-linux-gnu']
  .map((triplet) => `/usr/lib/${triplet}/faketime/libfaketimeMT.so.1`)
  .find((path) => existsSync(path));
let world: World;
let dir: string;
let agent: RunningAgent;
const clockFile = () => join(dir, 'faketime');

/** Sets the agent's clock: a libfaketime spec ("+0", "+3650d", "@1970-01-02 00:00:00"). */
const setClock = (spec: string) => writeFile(clockFile(), `${spec}\n`);

interface Status {
  overall: { status: string; reasons: string[] };
  stale: boolean;
  freshSince: string | null;
  now: string;
  size: number;
  lastSync: { ok: boolean; error?: { code: string; message: string } } | null;
}

async function look(what: string) {
  const synced = await agent.request('POST', '/v1/sync');
  const status = (await agent.request('GET', '/v1/status')).body as Status;
  const verified = await agent.request('POST', '/v1/verify', { digest: `sha256:${digestOf(0)}` });
  const answer = verified.body as {
    stale?: boolean;
    exitCode: number;
    results?: { status: string | null; reason?: string }[];
  };
  const result = answer.results?.[0];
  console.log(
    `chaos clock ${what}: sync ${synced.status}, status ${JSON.stringify(status.overall)}, stale ${status.stale}, now ${status.now}, freshSince ${status.freshSince}, verdict ${result?.status}: ${result?.reason ?? JSON.stringify(answer)}`,
  );
  expect(agent.child.exitCode, what).toBeNull();
  // Whatever the time, a trusted statement never turns into a distrusted one.
  expect(['UNTRUSTED', 'REVOKED'], what).not.toContain(result?.status);
  expect(status.overall.status, what).not.toBe('violation');
  // No dockerd here: the agent says so, which is not what this test looks at.
  const reasons = status.overall.reasons.filter((reason) => !reason.startsWith('docker: '));
  return { synced, status, reasons, verdict: result?.status, answer };
}

describe('the clock jumping under a running agent', () => {
  beforeAll(async () => {
    if (!library) throw new Error('libfaketime not found: apt-get install faketime');
    world = await testWorld();
    await grow(world, 10);
    dir = await mkdtemp(join(tmpdir(), 'vouch-chaos-clock-'));
    await setClock('+0');
    const stateDir = await syncedDevice(world);
    agent = await startAgent(
      { stateDir, mirrors: [world.mirror], sync: { schedule: '0 0 1 1 *' } },
      {
        LD_PRELOAD: library,
        FAKETIME_TIMESTAMP_FILE: clockFile(),
        FAKETIME_NO_CACHE: '1',
        DONT_FAKE_MONOTONIC: '1',
      },
    );
  }, 120_000);

  afterAll(async () => {
    if (agent) expect((await stopAgent(agent)).code).toBe(0);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ten years on: stale, never UNTRUSTED; 1970: no going back, no crash; now again: healthy', async () => {
    const before = await look('now');
    expect(before.reasons).toEqual([]);
    expect(before.verdict).toBe('TRUSTED');

    await setClock('+3650d');
    const future = await look('+10 years');
    expect(future.status.now.slice(0, 4)).toBe(String(new Date().getUTCFullYear() + 10));
    // Stale, said everywhere; answers still from local data, marked stale (docs/usage.md
    // "Exit code of verify").
    expect(future.status.stale).toBe(true);
    expect(future.status.overall.status).toBe('stale');
    expect(future.answer.stale).toBe(true);
    expect(future.verdict).toBe('TRUSTED');

    // A hundred years on, past the root's expiry (2099): it cannot check, and says why.
    await setClock('+36500d');
    const expired = await look('+100 years');
    expect(expired.verdict).toBeNull();
    expect(expired.answer.results?.[0]?.reason).toMatch(/^could not check: trust root v1 expired/);
    expect(expired.answer.exitCode).toBe(69);

    await setClock('@1970-01-02 00:00:00');
    const past = await look('1970');
    // Its trusted time stays at the newest signed time it has seen (the clock floor,
    // docs/security.md): freshness is not taken back, the state not called stale.
    expect(past.status.now >= (before.status.freshSince as string), past.status.now).toBe(true);
    expect(past.status.freshSince).toBe(before.status.freshSince);
    expect(past.status.stale).toBe(false);
    expect(past.verdict).toBe('TRUSTED');

    await setClock('+0');
    const after = await look('now again');
    expect(after.reasons).toEqual([]);
    expect(after.status.stale).toBe(false);
    expect(after.verdict).toBe('TRUSTED');
  }, 120_000);
});
