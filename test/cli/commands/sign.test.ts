import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnvelope, serializeEnvelope, verifyEnvelope } from '../../../agent/core/dsse';
import { parseStatement } from '../../../agent/core/statement';
import { buildScratchImage, type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import { runCli } from '../../helpers/cli';
import { describeWith } from '../../helpers/services';
import { signRoot, testKey, testRoot } from '../../helpers/trust';

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
    ['a digest without a name', ['--digest', `sha256:${'0'.repeat(64)}`]],
    [
      'two digests with one name',
      [
        '--digest',
        `sha256:${'0'.repeat(64)}`,
        '--digest',
        `sha256:${'1'.repeat(64)}`,
        '--name',
        'n',
      ],
    ],
    ['--name with two files', ['--file', file, '--file', `${file}`, '--name', 'n']],
    ['the same file twice', ['--file', file, '--file', file]],
    ['--each without --out-dir', ['--file', file, '--each']],
    ['--out-dir without --each', ['--file', file, '--out-dir', dir]],
    ['--each with --out', ['--file', file, '--each', '--out-dir', dir, '--out', 'x']],
    ['--out twice', ['--file', file, '--out', join(dir, 'o1'), '--out', join(dir, 'o2')]],
    ['a digest that is not sha256', ['--digest', `sha512:${'0'.repeat(64)}`, '--name', 'n']],
    [
      'a digest with a digit that is not hex',
      ['--digest', `sha256:${'g'.repeat(64)}`, '--name', 'n'],
    ],
    ['an unknown status', ['--file', file, '--status', 'maybe']],
    [
      '--chunked without --file',
      ['--digest', `sha256:${'0'.repeat(64)}`, '--name', 'n', '--chunked'],
    ],
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
      ['a public key', signer.publicPem, /k\.key is a public key; sign with the private key$/m],
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

    it('the .pub keygen wrote, for --key: names the private key, not chmod', async () => {
      const sub = mkdtempSync(join(dir, 'pub-'));
      const keys = join(sub, 'keys');
      expect((await runCli(['keygen', '--signer', 'me', '--out', keys])).exitCode).toBe(0);
      const result = await runCli([
        'sign',
        '--key',
        join(keys, 'me.pub'),
        '--signer',
        'me',
        '--file',
        file,
      ]);
      expect(result.exitCode).toBe(65);
      expect(result.stderr).toBe(
        `vouch: ${join(keys, 'me.pub')} is a public key; sign with the private key, e.g. ${join(keys, 'me.key')}\n`,
      );
      expect(result.stdout).toBe('');
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

  describe('several subjects', () => {
    const second = join(dir, 'haos_rpi4-64-14.0.img.xz');
    writeFileSync(second, 'another image');
    const secondDigest = createHash('sha256').update('another image').digest('hex');

    it('signs every --file and --digest in one statement (a release)', async () => {
      const result = await runCli([
        'sign',
        ...base,
        '--file',
        file,
        '--digest',
        `sha256:${'ab'.repeat(32)}`,
        '--file',
        second,
        '--digest',
        `sha256:${'cd'.repeat(32)}`,
        '--name',
        'first',
        '--name',
        'second',
      ]);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(statementIn(result.stdout).subjects).toEqual([
        { name: 'haos_rpi5-64-14.0.img.xz', sha256: fileDigest },
        { name: 'haos_rpi4-64-14.0.img.xz', sha256: secondDigest },
        { name: 'first', sha256: 'ab'.repeat(32) },
        { name: 'second', sha256: 'cd'.repeat(32) },
      ]);
    });

    it('records both digests of every file with --chunked', async () => {
      const result = await runCli(['sign', ...base, '--file', file, '--file', second, '--chunked']);
      expect(result.exitCode, result.stderr).toBe(0);
      const leaf = (text: string) => createHash('sha256').update(`\0${text}`).digest('hex');
      expect(statementIn(result.stdout).subjects).toEqual([
        { name: 'haos_rpi5-64-14.0.img.xz', sha256: fileDigest, merkle: leaf('disk image bytes') },
        { name: 'haos_rpi4-64-14.0.img.xz', sha256: secondDigest, merkle: leaf('another image') },
      ]);
    });

    it('--each --out-dir writes one envelope per subject', async () => {
      const outDir = join(mkdtempSync(join(dir, 'each-')), 'release');
      const result = await runCli([
        'untrust',
        ...base,
        '--file',
        file,
        '--digest',
        `sha256:${'ab'.repeat(32)}`,
        '--name',
        'ghcr.io/home-assistant/core:2025.6.0',
        '--each',
        '--out-dir',
        outDir,
        '-o',
        'json',
      ]);
      expect(result.exitCode, result.stderr).toBe(0);
      const written = [
        join(outDir, 'haos_rpi5-64-14.0.img.xz.json'),
        join(outDir, 'ghcr.io_home-assistant_core_2025.6.0.json'),
      ];
      expect(JSON.parse(result.stdout).envelopes.map((e: { out: string }) => e.out)).toEqual(
        written,
      );
      expect(statementIn(readFileSync(written[0] as string, 'utf8'))).toMatchObject({
        status: 'untrusted',
        subjects: [{ name: 'haos_rpi5-64-14.0.img.xz', sha256: fileDigest }],
      });
      expect(statementIn(readFileSync(written[1] as string, 'utf8')).subjects).toEqual([
        { name: 'ghcr.io/home-assistant/core:2025.6.0', sha256: 'ab'.repeat(32) },
      ]);
      // Nothing is replaced, and nothing is half written: one existing file stops them all.
      const again = await runCli([
        'sign',
        ...base,
        '--file',
        second,
        '--file',
        file,
        '--each',
        '--out-dir',
        outDir,
      ]);
      expect(again.exitCode).toBe(64);
      expect(again.stderr).toMatch(/haos_rpi5-64-14.0.img.xz.json exists/);
      expect(readdirSync(outDir).sort()).toEqual(written.map((path) => basename(path)).sort());
    });

    it('--each refuses two subjects that would share a file name', async () => {
      const outDir = mkdtempSync(join(dir, 'clash-'));
      const result = await runCli([
        'sign',
        ...base,
        ...['--digest', `sha256:${'ab'.repeat(32)}`, '--name', 'a/b'],
        ...['--digest', `sha256:${'cd'.repeat(32)}`, '--name', 'a:b'],
        '--each',
        '--out-dir',
        outDir,
      ]);
      expect(result.exitCode).toBe(64);
      expect(result.stderr).toMatch(/would both be written to .*a_b\.json/);
      expect(readdirSync(outDir)).toEqual([]);
    });
  });

  it('--log adds the statement to a log that serves a root, and publishes it', async () => {
    const rootKey = testKey('root');
    const logKey = testKey('example.org/log');
    const rootPath = join(dir, 'log-root.json');
    writeFileSync(
      rootPath,
      serializeEnvelope(
        signRoot(
          testRoot({
            rootKeys: [rootKey.public],
            threshold: 1,
            log: { origin: 'example.org/log', key: logKey.public },
            signers: [{ id: 'notary@home-assistant.io', keys: [signer.public], scopes: ['**'] }],
          }),
          [rootKey],
        ),
      ),
    );
    const logKeyPath = join(dir, 'log.key');
    writeFileSync(logKeyPath, logKey.privatePem, { mode: 0o600 });
    const log = join(dir, 'log');
    const init = await runCli([
      'log',
      'init',
      log,
      '--origin',
      'example.org/log',
      '--key',
      logKeyPath,
      '--root',
      rootPath,
    ]);
    expect(init.exitCode, init.stderr).toBe(0);
    const out = join(dir, 'logged.json');
    const result = await runCli(['sign', ...base, '--file', file, '--log', log, '--out', out]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(
      `${log} entry 0: trusted by notary@home-assistant.io for haos_rpi5-64-14.0.img.xz (sha256:${fileDigest}); published (size 1)\n`,
    );
    // The entry is the envelope written to --out, and the published checkpoint covers it.
    expect(readFileSync(join(log, 'public', 'tile', 'entries', '000.p', '1')).subarray(2)).toEqual(
      readFileSync(out),
    );
    expect(readFileSync(join(log, 'public', 'checkpoint'), 'utf8')).toMatch(
      /^example\.org\/log\n1\n/,
    );
    // A signer the root does not list: nothing is added.
    const stranger = await runCli([
      'sign',
      '--key',
      keyPath,
      '--signer',
      'stranger',
      '--file',
      file,
      '--log',
      log,
      '--out',
      join(dir, 'refused.json'),
    ]);
    expect(stranger.exitCode).toBe(65);
    expect(stranger.stderr).toMatch(/^vouch: the statement: names signer stranger/);
    // No --out file that looks like an accepted statement.
    expect(readdirSync(dir)).not.toContain('refused.json');
    expect(readFileSync(join(log, 'public', 'checkpoint'), 'utf8')).toMatch(
      /^example\.org\/log\n1\n/,
    );
  });

  it('reports a file it cannot read with exit 74 and writes nothing', async () => {
    const out = join(dir, 'never.json');
    for (const chunked of [[], ['--chunked']]) {
      const missing = join(dir, 'missing');
      const result = await runCli(['sign', ...base, '--file', missing, ...chunked, '--out', out]);
      expect(result.exitCode).toBe(74);
    }
    expect(readdirSync(dir)).not.toContain('never.json');
  });

  it('--file --chunked records the merkle-sha256-1mib digest beside sha256', async () => {
    // One chunk: the root is the RFC 6962 leaf hash SHA-256(0x00 ‖ content).
    const merkle = createHash('sha256').update('\0disk image bytes').digest('hex');
    const out = join(dir, 'chunked.json');
    const result = await runCli(['sign', ...base, '--file', file, '--chunked', '--out', out]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toBe(
      `${out}: trusted by notary@home-assistant.io for haos_rpi5-64-14.0.img.xz ` +
        `(sha256:${fileDigest}, merkle-sha256-1mib:${merkle})\n`,
    );
    expect(statementIn(readFileSync(out, 'utf8')).subjects).toEqual([
      { name: 'haos_rpi5-64-14.0.img.xz', sha256: fileDigest, merkle },
    ]);
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

  it('signs every --image in one statement', async () => {
    const first = await buildScratchImage(daemon.docker, 'ghcr.io/home-assistant/a:1.0', {
      'a.txt': 'a',
    });
    const second = await buildScratchImage(daemon.docker, 'ghcr.io/home-assistant/b:1.0', {
      'b.txt': 'b',
    });
    const result = await runCli(
      ['sign', ...base, '--image', 'ghcr.io/home-assistant/a:1.0', '--image', second],
      { DOCKER_HOST: daemon.dockerHost },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(statementIn(result.stdout).subjects).toEqual([
      { name: 'ghcr.io/home-assistant/a:1.0', sha256: first.slice('sha256:'.length) },
      { name: 'ghcr.io/home-assistant/b:1.0', sha256: second.slice('sha256:'.length) },
    ]);
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
