import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { progressLine } from '../../../agent/cli/actions/verify';
import { exitCodeOf } from '../../../agent/core/exit-codes';
import type { SubjectResult } from '../../../agent/device/verify/verify';
import { runCli } from '../../helpers/cli';
import { cliBundle } from '../../helpers/device';
import {
  contentDigest,
  notary,
  type PublishedWorld,
  publishAndSync,
} from '../../helpers/published';

/**
 * End to end through the CLI, as a publisher and a device would (test/helpers/published.ts:
 * keygen → root → sign files → log add/publish → sync), then verify each outcome with its
 * exit code. Then the exit-code rules, the progress line, and no network (a socket spy; the
 * built bundle in a network namespace without network, as root).
 */

let world: PublishedWorld;
let stateDir: string;
const file = (name: string) => join(world.dir, name);

beforeAll(async () => {
  world = await publishAndSync();
  stateDir = world.stateDir;
});

describe('vouch verify', () => {
  it.each([
    ['trusted', 0, 'TRUSTED'],
    ['untrusted', 1, 'UNTRUSTED'],
    ['unknown', 2, 'UNKNOWN'],
    ['unsupported', 3, 'UNSUPPORTED'],
    ['revoked', 4, 'REVOKED'],
    ['contested', 1, 'UNTRUSTED'],
  ])('verify file %s: exit %i (%s)', async (name, exitCode, status) => {
    const result = await runCli(['verify', 'file', file(name), '--state-dir', stateDir]);
    expect(result.exitCode, result.stderr).toBe(exitCode);
    expect(result.stdout).toMatch(
      new RegExp(`^${status} ${file(name)} sha256:${contentDigest(name)}: `),
    );
  });

  it('several files: JSON per subject, exit code = the worst status', async () => {
    const names = ['trusted', 'unknown', 'unsupported', 'revoked', 'untrusted'];
    const result = await runCli([
      'verify',
      'file',
      ...names.map(file),
      '--state-dir',
      stateDir,
      '-o',
      'json',
    ]);
    expect(result.exitCode).toBe(4);
    const json = JSON.parse(result.stdout);
    expect(json).toMatchObject({ state: 'ok', stale: false, size: 7, rootVersion: 1, exitCode: 4 });
    expect(json.results.map((r: SubjectResult) => r.status)).toEqual([
      'TRUSTED',
      'UNKNOWN',
      'UNSUPPORTED',
      'REVOKED',
      'UNTRUSTED',
    ]);
    expect(json.results[3]).toMatchObject({
      subject: file('revoked'),
      sha256: contentDigest('revoked'),
      size: 'content of revoked'.length,
      code: 4,
      signer: notary,
      name: 'revoked',
      logIndex: 4,
      reason: expect.stringMatching(/: key leaked$/),
    });
    const mild = await runCli([
      'verify',
      'file',
      file('trusted'),
      file('unknown'),
      file('unsupported'),
      '--state-dir',
      stateDir,
    ]);
    expect(mild.exitCode).toBe(3);
  });

  it('verify digest: sha256:<hex> or bare hex, either case', async () => {
    const trusted = contentDigest('trusted');
    const result = await runCli([
      'verify',
      'digest',
      `sha256:${trusted.toUpperCase()}`,
      contentDigest('untrusted'),
      '--state-dir',
      stateDir,
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout.split('\n')[0]).toMatch(
      new RegExp(`^TRUSTED sha256:${trusted}: marked trusted`),
    );
    const bad = await runCli([
      'verify',
      'digest',
      'sha256:abc',
      '--state-dir',
      stateDir,
      '-o',
      'json',
    ]);
    expect(bad.exitCode).toBe(64);
    expect(JSON.parse(bad.stdout).error.code).toBe('USAGE');
  });

  it('a file that cannot be read: could not check, exit 74, not a status', async () => {
    const result = await runCli([
      'verify',
      'file',
      file('revoked'),
      file('missing'),
      '--state-dir',
      stateDir,
      '-o',
      'json',
    ]);
    expect(result.exitCode).toBe(74);
    const json = JSON.parse(result.stdout);
    expect(json.results[1]).toMatchObject({ status: null, code: null, error: { code: 'IO' } });
  });

  it('no trust state: exit 69, each subject could not be checked', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'vouch-nostate-'));
    const result = await runCli([
      'verify',
      'file',
      file('trusted'),
      '--state-dir',
      empty,
      '-o',
      'json',
    ]);
    expect(result.exitCode).toBe(69);
    expect(JSON.parse(result.stdout)).toMatchObject({
      state: 'missing',
      exitCode: 69,
      results: [{ status: null, error: { code: 'NO_TRUST_STATE' } }],
    });
    const text = await runCli(['verify', 'digest', '0'.repeat(64), '--state-dir', empty]);
    expect(text.exitCode).toBe(69);
    expect(text.stdout).toMatch(/^COULD NOT CHECK sha256:[0-9a-f]{64}: no trust state in /);
  });

  it('a stale state answers and warns', async () => {
    const config = file('stale.yaml');
    await writeFile(config, 'sync:\n  maxAge: 1ms\n');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const result = await runCli([
      'verify',
      'file',
      file('trusted'),
      '--state-dir',
      stateDir,
      '--config',
      config,
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/warning: the trust state is stale/);
  });

  it('opens no socket', async () => {
    const connect = vi.spyOn(Socket.prototype, 'connect');
    try {
      await runCli(['verify', 'file', file('trusted'), file('revoked'), '--state-dir', stateDir]);
      await runCli(['verify', 'digest', '0'.repeat(64), '--state-dir', stateDir]);
      await runCli(['authenticate', '--hash', '0'.repeat(64), '--state-dir', stateDir]);
      expect(connect).not.toHaveBeenCalled();
    } finally {
      connect.mockRestore();
    }
  });

  it('works in a network namespace without network and makes no network system call (built bundle, unshare -n, strace, as root)', () => {
    expect(process.getuid?.(), 'this test needs root for unshare -n').toBe(0);
    expect(
      spawnSync('strace', ['-V']).status,
      'this test needs strace: apt-get install strace',
    ).toBe(0);
    const traces = mkdtempSync(join(tmpdir(), 'vouch-strace-'));
    let runs = 0;
    /**
     * `argv` in a new network namespace, with every system call of every thread that makes a
     * socket or gives one an address logged (not all of %network: the stdio pipes spawnSync
     * gives are sockets the runtime inspects with getsockname).
     */
    const offline = (argv: readonly string[]) => {
      const trace = join(traces, `${runs++}.txt`);
      const result = spawnSync(
        'unshare',
        [
          '-n',
          'strace',
          '-f',
          '-qq',
          '-e',
          'trace=socket,socketpair,connect,bind,listen',
          '-o',
          trace,
          ...argv,
        ],
        { encoding: 'utf8' },
      );
      expect(result.error).toBeUndefined();
      return { ...result, calls: readFileSync(trace, 'utf8') };
    };
    const run = (...args: string[]) =>
      offline([process.execPath, cliBundle, '--state-dir', stateDir, ...args]);
    // The check sees a socket when one is made: a connection attempt shows as socket + connect.
    const probe = offline([
      process.execPath,
      '-e',
      "require('node:net').connect(9, '127.0.0.1').on('error', () => {})",
    ]);
    expect(probe.calls).toMatch(/socket\(AF_INET, SOCK_STREAM/);
    expect(probe.calls).toMatch(/connect\(/);

    const trusted = run('verify', 'file', file('trusted'));
    expect(trusted.status, trusted.stderr).toBe(0);
    expect(trusted.calls).toBe('');
    const worst = run('verify', 'file', file('revoked'), file('trusted'));
    expect(worst.status).toBe(4);
    expect(worst.calls).toBe('');
    const digest = run('verify', 'digest', `sha256:${contentDigest('untrusted')}`);
    expect(digest.status, digest.stderr).toBe(1);
    expect(digest.calls).toBe('');
    const auth = run(
      'authenticate',
      '--signerID',
      notary,
      '--hash',
      contentDigest('trusted'),
      '-o',
      'json',
    );
    expect(auth.status, auth.stderr).toBe(0);
    expect(JSON.parse(auth.stdout)).toMatchObject({ status: 0, verified: true });
    expect(auth.calls).toBe('');
  });
});

describe('chunked digests (merkle-sha256-1mib): sign --chunked, verify file [--chunked]', () => {
  const MiB = 2 ** 20;
  let chunked: PublishedWorld;
  const at = (name: string) => join(chunked.dir, name);
  /** G: signed --chunked; its one-chunk root SHA-256(0x00 ‖ G) is the plain SHA-256 of 0x00 ‖ G. */
  const g = 'content of g';
  const leafOf = (text: string) => createHash('sha256').update(`\0${text}`).digest('hex');
  const verify = async (...args: string[]) => {
    const result = await runCli([...args, '--state-dir', chunked.stateDir, '-o', 'json']);
    return { exitCode: result.exitCode, json: JSON.parse(result.stdout), stderr: result.stderr };
  };

  beforeAll(async () => {
    chunked = await publishAndSync(async ({ file, sign }) => {
      // Files of 64 MiB and more are looked up by their chunked digest first.
      const big = async (name: string) => {
        await writeFile(file(name), `content of ${name}`);
        await truncate(file(name), 65 * MiB + 7);
      };
      for (const name of ['bundle.raucb', 'plain.raucb', 'pulled.raucb']) await big(name);
      await writeFile(file('g'), g);
      await writeFile(file('y'), `\0content of g2`);
      const envelopes = [
        await sign('notarize', notary, 'bundle.raucb', '--chunked'),
        await sign('notarize', notary, 'plain.raucb'),
        await sign('notarize', notary, 'pulled.raucb', '--chunked'),
        await sign('notarize', notary, 'g', '--chunked'),
        // y = 0x00 ‖ G2: its plain SHA-256 is the one-chunk root of G2, which nobody signed.
        await sign('notarize', notary, 'y'),
      ];
      // A revocation that names only the SHA-256 (made without the file).
      const sha256 = createHash('sha256')
        .update('content of pulled.raucb')
        .update(Buffer.alloc(65 * MiB + 7 - 'content of pulled.raucb'.length))
        .digest('hex');
      const revocation = file('pulled-revoked.json');
      const revoke = await runCli([
        'sign',
        '--key',
        file(`keys/${notary}.key`),
        '--signer',
        notary,
        '--digest',
        `sha256:${sha256}`,
        '--name',
        'pulled.raucb',
        '--status',
        'revoked',
        '--reason',
        'pulled',
        '--out',
        revocation,
      ]);
      expect(revoke.exitCode, revoke.stderr).toBe(0);
      return [...envelopes, revocation];
    });
    await writeFile(at('a'), `\0${g}`);
    await writeFile(at('g2'), 'content of g2');
  });

  it('a large file signed --chunked is decided by its chunked digest, on all cores', async () => {
    const { exitCode, json } = await verify('verify', 'file', at('bundle.raucb'));
    expect(exitCode).toBe(0);
    expect(json.results[0]).toMatchObject({
      status: 'TRUSTED',
      digest: 'merkle-sha256-1mib',
      merkle: expect.stringMatching(/^[0-9a-f]{64}$/),
      sha256: null,
      size: 65 * MiB + 7,
      name: 'bundle.raucb',
      logIndex: 7,
    });
    const forced = await verify('verify', 'file', '--chunked', at('bundle.raucb'));
    expect(forced.exitCode).toBe(0);
    expect(forced.json.results[0]).toMatchObject({
      digest: 'merkle-sha256-1mib',
      merkle: json.results[0].merkle,
    });
    const text = await runCli([
      'verify',
      'file',
      at('bundle.raucb'),
      '--state-dir',
      chunked.stateDir,
    ]);
    expect(text.stdout).toMatch(
      new RegExp(`^TRUSTED ${at('bundle.raucb')} merkle-sha256-1mib:${json.results[0].merkle}: `),
    );
    const digest = await verify('verify', 'digest', `merkle-sha256-1mib:${json.results[0].merkle}`);
    expect(digest.exitCode).toBe(0);
    expect(digest.json.results[0]).toMatchObject({
      subject: `merkle-sha256-1mib:${json.results[0].merkle}`,
      digest: 'merkle-sha256-1mib',
      status: 'TRUSTED',
    });
  });

  it('a large file signed without --chunked still verifies, by SHA-256 (not with --chunked)', async () => {
    const { exitCode, json } = await verify('verify', 'file', at('plain.raucb'));
    expect(exitCode).toBe(0);
    expect(json.results[0]).toMatchObject({
      status: 'TRUSTED',
      digest: 'sha256',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      // Computed first, found nothing: reported all the same.
      merkle: expect.stringMatching(/^[0-9a-f]{64}$/),
      logIndex: 8,
    });
    const forced = await verify('verify', 'file', '--chunked', at('plain.raucb'));
    expect(forced.exitCode).toBe(2);
    expect(forced.json.results[0]).toMatchObject({ status: 'UNKNOWN', sha256: null });
  });

  it('a revocation naming only the SHA-256 reaches the file found by its chunked digest', async () => {
    for (const args of [[], ['--chunked']]) {
      const { exitCode, json } = await verify('verify', 'file', ...args, at('pulled.raucb'));
      expect(exitCode).toBe(4);
      expect(json.results[0]).toMatchObject({
        status: 'REVOKED',
        digest: 'merkle-sha256-1mib',
        reason: expect.stringMatching(/pulled$/),
      });
    }
  });

  it('one digest kind never answers for the other (SHA-256(0x00 ‖ G) = root of G)', async () => {
    // a = 0x00 ‖ G: its SHA-256 is G's chunked root, which was signed; a was not.
    const a = await verify('verify', 'file', at('a'));
    expect(a.exitCode).toBe(2);
    expect(a.json.results[0]).toMatchObject({ status: 'UNKNOWN', sha256: leafOf(g) });
    const asSha256 = await verify('verify', 'digest', `sha256:${leafOf(g)}`);
    expect(asSha256.json.results[0]).toMatchObject({ status: 'UNKNOWN' });
    const asRoot = await verify('verify', 'digest', `merkle-sha256-1mib:${leafOf(g)}`);
    expect(asRoot.json.results[0]).toMatchObject({ status: 'TRUSTED', name: 'g' });
    // g2's chunked root is the SHA-256 of y, which was signed; g2 was not.
    const g2 = await verify('verify', 'file', '--chunked', at('g2'));
    expect(g2.exitCode).toBe(2);
    expect(g2.json.results[0]).toMatchObject({
      status: 'UNKNOWN',
      merkle: leafOf('content of g2'),
    });
    const asRootY = await verify(
      'verify',
      'digest',
      `merkle-sha256-1mib:${leafOf('content of g2')}`,
    );
    expect(asRootY.json.results[0]).toMatchObject({ status: 'UNKNOWN' });
  });

  it('verify digest refuses what is neither digest (exit 64)', async () => {
    const { exitCode, json } = await verify(
      'verify',
      'digest',
      `merkle-sha256-4mib:${'0'.repeat(64)}`,
    );
    expect(exitCode).toBe(64);
    expect(json.error.code).toBe('USAGE');
  });
});

describe('exit code rules and the progress line', () => {
  const result = (fields: Partial<SubjectResult>): SubjectResult => ({
    subject: 's',
    digest: null,
    sha256: null,
    merkle: null,
    size: null,
    status: null,
    code: null,
    signer: null,
    name: null,
    logIndex: null,
    issuedAt: null,
    reason: '',
    ignored: [],
    ...fields,
  });

  it('orders REVOKED > UNTRUSTED > UNSUPPORTED > UNKNOWN > TRUSTED; could-not-check first', () => {
    const of = (...names: ('TRUSTED' | 'UNTRUSTED' | 'UNKNOWN' | 'UNSUPPORTED' | 'REVOKED')[]) =>
      exitCodeOf(names.map((status) => result({ status })));
    expect(of('TRUSTED', 'TRUSTED')).toBe(0);
    expect(of('TRUSTED', 'UNKNOWN')).toBe(2);
    expect(of('UNKNOWN', 'UNSUPPORTED')).toBe(3);
    expect(of('UNSUPPORTED', 'UNTRUSTED')).toBe(1);
    expect(of('UNTRUSTED', 'REVOKED', 'TRUSTED')).toBe(4);
    expect(
      exitCodeOf([
        result({ status: 'REVOKED' }),
        result({ error: { code: 'CANNOT_CHECK', message: 'root expired' } }),
      ]),
    ).toBe(69);
  });

  it('fits the progress line to the terminal', () => {
    const MiB = 2 ** 20;
    expect(progressLine('/data/image.img', 512 * MiB, 1024 * MiB, 80)).toBe(
      '/data/image.img [##########----------]  50% 512/1024 MiB',
    );
    const long = progressLine(`/very/${'long/'.repeat(30)}image.img`, 0, 100 * MiB, 60);
    expect(long.length).toBeLessThanOrEqual(59);
    expect(long).toMatch(/^….*image\.img \[-{20}\] {3}0% 0\/100 MiB$/);
  });
});
