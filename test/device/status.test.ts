import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serializeEnvelope } from '../../agent/core/dsse';
import { deviceStatus, loadState, syncFromMirrors, verdictFor } from '../../agent/device';
import { publicDir } from '../../agent/ledger';
import { createLogger } from '../../agent/logger';
import { digestOf, grow, signerId, statement, stateOf, testWorld } from '../helpers/device';
import { signRoot, testKey } from '../helpers/trust';

const logger = createLogger('cli', 'silent');
const day = 86_400_000;
const sync = (stateDir: string, mirror: string, clock: () => number, rootPath?: string) =>
  syncFromMirrors({
    stateDir,
    mirrors: [mirror],
    rootPath,
    timeoutMs: 5000,
    maxBundleBytes: 1 << 24,
    logger,
    clock,
  });

describe('freshness and the clock floor', () => {
  it('takes the newest cosignature time as the floor: a device booting at 1970 neither expires everything nor goes back', async () => {
    const world = await testWorld({ witness: true });
    const cosigned = new Date('2031-03-01T00:00:00Z');
    await grow(world, 20, undefined, cosigned);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-floor-'));
    const epoch = () => 0;
    await sync(dir, world.mirror, () => Date.parse('2031-03-01T00:00:00Z'), world.rootPath);
    const state = await loadState(dir);
    expect(state?.clockFloor).toBe(cosigned.getTime() + 20_000);

    // The clock says 1970: "now" is the floor, the root (expiring 2099) is valid, fresh.
    const status = await deviceStatus(dir, 7 * day, epoch);
    expect(status).toMatchObject({
      stale: false,
      now: '2031-03-01T00:00:20Z',
      checkpointTime: '2031-03-01T00:00:20Z',
    });
    expect(
      verdictFor(await stateOf(dir), digestOf(3), status.now ? Date.parse(status.now) : 0),
    ).toMatchObject({
      status: 'TRUSTED',
    });
    // Eight days past the checkpoint's time, with no newer checkpoint: stale, still answering.
    const later = await deviceStatus(dir, 7 * day, () => cosigned.getTime() + 8 * day);
    expect(later.stale).toBe(true);

    // A larger tree cosigned before the floor is old data: refused like a rollback.
    await grow(world, 5, undefined, new Date('2030-01-01T00:00:00Z'));
    const refused = await sync(dir, world.mirror, epoch).catch((e: Error & { code?: string }) => e);
    expect((refused as { code?: string }).code).toBe('LOG_ROLLBACK');
    expect((refused as Error).message).toMatch(/before the newest time this device has seen/);
  });

  it('without witnesses, measures freshness from the last successful sync', async () => {
    const world = await testWorld();
    await grow(world, 3);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-fresh-'));
    const at = Date.parse('2026-01-10T00:00:00Z');
    await sync(dir, world.mirror, () => at, world.rootPath);
    expect((await deviceStatus(dir, 7 * day, () => at + 6 * day)).stale).toBe(false);
    const stale = await deviceStatus(dir, 7 * day, () => at + 8 * day);
    expect(stale).toMatchObject({
      stale: true,
      checkpointTime: null,
      freshSince: '2026-01-10T00:00:00Z',
    });
    expect(stale.lastSuccess?.at).toBe(at);
    expect((await deviceStatus(join(dir, 'none'), 7 * day)).stale).toBe(true);
  });
});

describe('root rotation', () => {
  it('follows the root chain from mirrors; a key rotated out no longer counts', async () => {
    const world = await testWorld();
    await grow(world, 4);
    const dir = await mkdtemp(join(tmpdir(), 'vouch-rotate-'));
    await sync(dir, world.mirror, Date.now, world.rootPath);
    expect(verdictFor(await stateOf(dir), digestOf(1), Date.now())).toMatchObject({
      status: 'TRUSTED',
    });

    // v2 replaces the signer's key; a statement by the old key logged after it is not indexed.
    const newKey = testKey(signerId);
    const v2 = {
      ...world.root,
      version: 2,
      signers: world.root.signers.map((signer) => ({ ...signer, keys: [newKey.public] })),
    };
    await mkdir(join(publicDir(world.logDir), 'roots'), { recursive: true });
    await writeFile(
      join(publicDir(world.logDir), 'roots', '2.json'),
      serializeEnvelope(signRoot(v2, [world.rootKey])),
    );
    await grow(world, 0, [statement(world, 50)]);
    const report = await sync(dir, world.mirror, Date.now);
    expect(report).toMatchObject({ rootVersion: 2, added: 1, indexed: 0 });
    expect(report.skipped.map((s) => s.code)).toEqual(['SIGNATURE_INVALID']);

    const state = await stateOf(dir);
    expect(state.root.version).toBe(2);
    const verdict = verdictFor(state, digestOf(1), Date.now());
    expect(verdict).toMatchObject({ status: 'UNKNOWN' });
    expect(verdict.outcome === 'status' && verdict.ignored[0]?.reason).toMatch(/no longer lists/);
  });
});
