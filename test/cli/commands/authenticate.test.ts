import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli';
import { contentDigest, notary, other, publishAndSync } from '../../helpers/published';

/**
 * `vouch authenticate` as Home Assistant's Supervisor called `cas authenticate --signerID
 * ID --hash HEX --output json --silent`, against a device synced through the whole CLI flow
 * (test/helpers/published.ts).
 */

let stateDir: string;

beforeAll(async () => {
  ({ stateDir } = await publishAndSync());
});

describe('vouch authenticate (CAS drop-in)', () => {
  const auth = (signer: string, name: string) =>
    runCli([
      'authenticate',
      '--signerID',
      signer,
      '--hash',
      contentDigest(name),
      '--output',
      'json',
      '--silent',
      '--state-dir',
      stateDir,
    ]);

  it('exit code = status number; JSON with hash, status, signer, timestamp, verified', async () => {
    for (const [name, status] of [
      ['trusted', 0],
      ['untrusted', 1],
      ['unknown', 2],
      ['unsupported', 3],
      ['revoked', 4],
    ] as const) {
      const result = await auth(notary, name);
      expect(result.exitCode, name).toBe(status);
      const json = JSON.parse(result.stdout);
      expect(json, name).toMatchObject({
        hash: contentDigest(name),
        status,
        verified: status === 0,
      });
      expect(json.timestamp, name).toSatisfy((t: unknown) =>
        status === 2 ? t === null : /^\d{4}-\d\d-\d\dT.*Z$/.test(String(t)),
      );
      expect(json.signer, name).toBe(status === 2 ? null : notary);
    }
  });

  it("counts only the given signer's statements", async () => {
    // `contested`: trusted by the notary, later untrusted by the other signer.
    expect((await auth(notary, 'contested')).exitCode).toBe(0);
    expect(JSON.parse((await auth(other, 'contested')).stdout)).toMatchObject({
      status: 1,
      signer: other,
      verified: false,
    });
    expect((await auth(other, 'trusted')).exitCode).toBe(2);
  });

  it('errors print {"error": …} with a sysexits code', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'vouch-nostate-'));
    const none = await runCli([
      'authenticate',
      '--hash',
      '0'.repeat(64),
      '-o',
      'json',
      '--state-dir',
      empty,
    ]);
    expect(none.exitCode).toBe(69);
    expect(JSON.parse(none.stdout)).toEqual({
      error: { code: 'NO_TRUST_STATE', message: expect.stringMatching(/no trust state/) },
    });
    const bad = await runCli([
      'authenticate',
      '--hash',
      'zz',
      '-o',
      'json',
      '--state-dir',
      stateDir,
    ]);
    expect(bad.exitCode).toBe(64);
    expect(JSON.parse(bad.stdout)).toHaveProperty('error.code', 'USAGE');
    const missing = await runCli(['authenticate', '-o', 'json', '--state-dir', stateDir]);
    expect(missing.exitCode).toBe(64);
    expect(JSON.parse(missing.stdout)).toHaveProperty('error');
  });
});
