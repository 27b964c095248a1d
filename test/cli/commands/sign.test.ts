import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageSubjects } from '../../../agent/cli/docker';
import { parseEnvelope, verifyEnvelope } from '../../../agent/core/dsse';
import { VouchError } from '../../../agent/core/errors';
import { parseStatement } from '../../../agent/core/statement';
import { runCli } from '../../helpers/cli';
import { buildScratchImage, type Dockerd, startDockerd } from '../../helpers/dockerd';
import { describeWith } from '../../helpers/services';
import { testKey } from '../../helpers/trust';

const dir = mkdtempSync(join(tmpdir(), 'vouch-sign-'));
const signer = testKey('notary@home-assistant.io');
const keyPath = join(dir, 'notary.key');
writeFileSync(keyPath, signer.privatePem, { mode: 0o600 });
const file = join(dir, 'haos_rpi5-64-14.0.img.xz');
writeFileSync(file, 'disk image bytes');
const fileDigest = createHash('sha256').update('disk image bytes').digest('hex');
const base = ['--key', keyPath, '--signer', 'notary@home-assistant.io'];

/** The statement inside an envelope file or text, after checking its signature. */
function statementIn(envelopeText: string) {
  const envelope = parseEnvelope(new Uint8Array(Buffer.from(envelopeText)));
  expect(envelope.payloadType).toBe('application/vnd.in-toto+json');
  expect(envelope.signatures[0]?.keyid).toMatch(/^[0-9a-f]{8}$/);
  return parseStatement(verifyEnvelope(envelope, [signer.public]).payload);
}

describe('vouch sign', () => {
  it('signs a file: the envelope goes to stdout', async () => {
    const before = Date.now();
    const result = await runCli(['sign', ...base, '--file', file, '--reason', 'release 14.0']);
    expect(result.exitCode).toBe(0);
    const statement = statementIn(result.stdout);
    expect(statement).toEqual({
      subjects: [{ name: 'haos_rpi5-64-14.0.img.xz', sha256: fileDigest }],
      status: 'trusted',
      signer: 'notary@home-assistant.io',
      issuedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      reason: 'release 14.0',
    });
    expect(Date.parse(statement.issuedAt)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    const json = await runCli(['sign', ...base, '--file', file, '-o', 'json']);
    expect(statementIn(JSON.stringify(JSON.parse(json.stdout))).status).toBe('trusted');
  });

  it('signs a digest under a name, with a status, into --out', async () => {
    const out = join(dir, 'revoked.json');
    const digest = 'ab'.repeat(32);
    const result = await runCli([
      'sign',
      ...base,
      '--digest',
      `sha256:${digest}`,
      '--name',
      'ghcr.io/home-assistant/core',
      '--status',
      'revoked',
      '--out',
      out,
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      `${out}: revoked by notary@home-assistant.io for ghcr.io/home-assistant/core (sha256:${digest})\n`,
    );
    expect(statementIn(readFileSync(out, 'utf8'))).toMatchObject({
      status: 'revoked',
      subjects: [{ name: 'ghcr.io/home-assistant/core', sha256: digest }],
    });
  });

  it.each([
    ['notarize', 'trusted'],
    ['untrust', 'untrusted'],
    ['unsupport', 'unsupported'],
  ])('vouch %s presets the status %s', async (verb, status) => {
    const result = await runCli([verb, ...base, '--file', file]);
    expect(result.exitCode).toBe(0);
    expect(statementIn(result.stdout).status).toBe(status);
    expect((await runCli([verb, ...base, '--file', file, '--status', 'trusted'])).exitCode).toBe(
      64,
    );
  });

  it.each([
    ['no subject', []],
    ['two subjects', ['--file', file, '--digest', `sha256:${'0'.repeat(64)}`, '--name', 'n']],
    ['a digest without a name', ['--digest', `sha256:${'0'.repeat(64)}`]],
    ['a digest that is not sha256', ['--digest', `sha512:${'0'.repeat(64)}`, '--name', 'n']],
    ['an uppercase digest', ['--digest', `sha256:${'A'.repeat(64)}`, '--name', 'n']],
    ['an unknown status', ['--file', file, '--status', 'maybe']],
  ])('refuses %s with exit 64', async (_what, args) => {
    const result = await runCli(['sign', ...base, ...args]);
    expect(result.exitCode).toBe(64);
    expect(result.stdout).toBe('');
  });

  describe('bad keys: a clear message, exit 65, nothing written', () => {
    const cases: [string, string, RegExp][] = [
      [
        'an RSA key',
        generateKeyPairSync('rsa', { modulusLength: 2048 })
          .privateKey.export({ format: 'pem', type: 'pkcs8' })
          .toString(),
        /expected an Ed25519 key, got RSA/,
      ],
      [
        'a P-256 key',
        generateKeyPairSync('ec', { namedCurve: 'P-256' })
          .privateKey.export({ format: 'pem', type: 'pkcs8' })
          .toString(),
        /expected an Ed25519 key, got EC/,
      ],
      ['garbage', 'garbage', /not a PEM private key/],
      ['a public key', signer.publicPem, /not a PEM private key/],
    ];
    it.each(cases)('%s', async (_what, pem, message) => {
      const sub = mkdtempSync(join(dir, 'bad-key-'));
      const path = join(sub, 'k.key');
      writeFileSync(path, pem, { mode: 0o600 });
      const result = await runCli([
        'sign',
        '--key',
        path,
        '--signer',
        's',
        '--file',
        file,
        '--out',
        join(sub, 'out.json'),
      ]);
      expect(result.exitCode).toBe(65);
      expect(result.stderr).toMatch(message);
      expect(readdirSync(sub)).toEqual(['k.key']);
    });

    it('a private key others can read (KEY_PERMISSIONS)', async () => {
      const sub = mkdtempSync(join(dir, 'perm-'));
      const path = join(sub, 'k.key');
      writeFileSync(path, signer.privatePem);
      chmodSync(path, 0o644);
      const result = await runCli([
        'sign',
        '--key',
        path,
        '--signer',
        's',
        '--file',
        file,
        '--out',
        join(sub, 'o'),
        '-o',
        'json',
      ]);
      expect(result.exitCode).toBe(65);
      expect(JSON.parse(result.stdout).error.code).toBe('KEY_PERMISSIONS');
      expect(readdirSync(sub)).toEqual(['k.key']);
    });
  });

  it('reports a file it cannot read with exit 74 and writes nothing', async () => {
    const out = join(dir, 'never.json');
    const result = await runCli(['sign', ...base, '--file', join(dir, 'missing'), '--out', out]);
    expect(result.exitCode).toBe(74);
    expect(readdirSync(dir)).not.toContain('never.json');
  });
});

describe('imageSubjects', () => {
  /** The Engine API answer for an image pulled from a registry (repo digests need a registry). */
  const fakeDocker = (inspect: object | Error) =>
    ({
      getImage: () => ({
        inspect: async () => {
          if (inspect instanceof Error) throw inspect;
          return inspect;
        },
      }),
    }) as unknown as Docker;
  const id = `sha256:${'1'.repeat(64)}`;
  const pulled = {
    Id: id,
    RepoTags: ['ghcr.io/home-assistant/core:2025.6.0', 'ghcr.io/home-assistant/core:stable'],
    RepoDigests: [
      `ghcr.io/home-assistant/core@sha256:${'2'.repeat(64)}`,
      `docker.io/homeassistant/core@sha256:${'3'.repeat(64)}`,
    ],
  };

  it('names the image ID by the reference and each repo digest by its repository', async () => {
    expect(await imageSubjects(fakeDocker(pulled), 'ghcr.io/home-assistant/core:stable')).toEqual([
      { name: 'ghcr.io/home-assistant/core:stable', sha256: '1'.repeat(64) },
      { name: 'ghcr.io/home-assistant/core', sha256: '2'.repeat(64) },
      { name: 'docker.io/homeassistant/core', sha256: '3'.repeat(64) },
    ]);
    expect((await imageSubjects(fakeDocker(pulled), id))[0]?.name).toBe(
      'ghcr.io/home-assistant/core:2025.6.0',
    );
    expect((await imageSubjects(fakeDocker(pulled), id, 'given'))[0]?.name).toBe('given');
  });

  it('maps Docker failures to typed errors', async () => {
    const missing = Object.assign(new Error('no such image'), { statusCode: 404 });
    await expect(imageSubjects(fakeDocker(missing), 'x')).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
    });
    const down = Object.assign(new Error('connect ENOENT /var/run/docker.sock'), {
      code: 'ENOENT',
    });
    await expect(imageSubjects(fakeDocker(down), 'x')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    await expect(imageSubjects(fakeDocker({ ...pulled, RepoTags: [] }), id)).rejects.toBeInstanceOf(
      VouchError,
    );
    await expect(
      imageSubjects(fakeDocker({ ...pulled, Id: 'sha512:00' }), 'x'),
    ).rejects.toMatchObject({ code: 'BAD_DATA' });
  });
});

describeWith('docker', 'vouch sign --image against a real dockerd', () => {
  let daemon: Dockerd;
  beforeAll(async () => {
    daemon = await startDockerd();
  });
  afterAll(async () => {
    await daemon.stop();
  });

  it('takes the image ID (config digest) from Docker through DOCKER_HOST', async () => {
    const id = await buildScratchImage(daemon.docker, 'ghcr.io/home-assistant/test-addon:1.0', {
      'app.txt': 'v1',
    });
    const env = { DOCKER_HOST: daemon.dockerHost };
    const result = await runCli(
      ['notarize', ...base, '--image', 'ghcr.io/home-assistant/test-addon:1.0'],
      env,
    );
    expect(result.exitCode).toBe(0);
    // A locally built image has no repo digests: the image ID is the only subject.
    expect(statementIn(result.stdout).subjects).toEqual([
      { name: 'ghcr.io/home-assistant/test-addon:1.0', sha256: id.slice('sha256:'.length) },
    ]);
    const byId = await runCli(['sign', ...base, '--image', id], env);
    expect(statementIn(byId.stdout).subjects[0]?.name).toBe(
      'ghcr.io/home-assistant/test-addon:1.0',
    );
  });

  it('says which image is missing (exit 65) and writes nothing', async () => {
    const out = join(dir, 'missing-image.json');
    const result = await runCli(['sign', ...base, '--image', 'nope:1', '--out', out], {
      DOCKER_HOST: daemon.dockerHost,
    });
    expect(result.exitCode).toBe(65);
    expect(result.stderr).toBe('vouch: Docker has no image nope:1\n');
    expect(readdirSync(dir)).not.toContain('missing-image.json');
  });

  it('says when Docker cannot be reached (exit 69)', async () => {
    const result = await runCli(['sign', ...base, '--image', 'x:1'], {
      DOCKER_HOST: `unix://${join(dir, 'no.sock')}`,
    });
    expect(result.exitCode).toBe(69);
  });
});
