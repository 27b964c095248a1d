import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatUtcTime } from '../../../agent/core/time';
import { runCli } from '../../helpers/cli';
import { grow, syncedDevice, testWorld } from '../../helpers/device';

const hour = 3_600_000;

describe('vouch status', () => {
  it('shows the age of the checkpoint’s signed time', async () => {
    const signedAt = Math.floor((Date.now() - 3 * hour) / 1000) * 1000;
    const world = await testWorld({ createdAt: new Date(signedAt) });
    await grow(world, 2, undefined, new Date(signedAt));
    const dir = await syncedDevice(world);

    const text = await runCli(['status', '--state-dir', dir]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain(`checkpoint: signed 3 h ago (${formatUtcTime(signedAt)})`);
    const json = JSON.parse((await runCli(['status', '--state-dir', dir, '-o', 'json'])).stdout);
    expect(json).toMatchObject({ checkpointTime: formatUtcTime(signedAt), stale: false });
    expect(json.checkpointAgeSeconds).toBeGreaterThanOrEqual(3 * 3600);
    expect(json.checkpointAgeSeconds).toBeLessThan(3 * 3600 + 600);

    const none = await runCli(['status', '--state-dir', join(dir, 'none')]);
    expect(none.stdout).toContain('checkpoint: no signed time');
  });
});
