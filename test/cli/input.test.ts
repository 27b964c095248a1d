import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSurrogateEscape } from '../../agent/core/surrogate-escape';
import { runCli } from '../helpers/cli';
import { cliBundle } from '../helpers/device';
import { contentDigest, notary, publishAndSync } from '../helpers/published';

/**
 * Issue #13, items 1 and 4, through the CLI: special files and kernel file systems as inputs,
 * outputs and directories of every command; names that are not UTF-8 (in-process and
 * through the built binary, whose arguments come as bytes); input that would forge lines of
 * text output; hex digests typed in either case. What hung before is bounded by the
 * runner's timeout (a spawned binary by its own).
 */

let dir: string;
let stateDir: string;
const file = (name: string) => join(dir, name);
/** A reason that returns to the start of the line and paints a green TRUSTED over it. */
const forgedReason = 'bad build\r\x1b[32mTRUSTED\x1b[0m';
let fifo: string;
let socketPath: string;
let server: Server;

beforeAll(async () => {
  const world = await publishAndSync(async ({ file, sign }) => {
    writeFileSync(file('reasoned'), 'content of reasoned');
    return [await sign('untrust', notary, 'reasoned', '--reason', forgedReason)];
  });
  dir = world.dir;
  stateDir = world.stateDir;
  fifo = file('fifo');
  execFileSync('mkfifo', [fifo]);
  socketPath = file('socket');
  server = createServer().listen(socketPath);
  await once(server, 'listening');
});

afterAll(() => server?.close());

/** CR and ESC, which move the cursor and start control sequences. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const terminalControls = /[\r\x1b]/;
const cli = (...argv: string[]) => runCli([...argv, '--log-level', 'silent']);
const json = (...argv: string[]) => runCli([...argv, '-o', 'json', '--log-level', 'silent']);

describe('special files: refused before anything is read or made', { timeout: 20_000 }, () => {
  const specials = () =>
    [
      ['/dev/zero', 'a character device'],
      [fifo, 'a FIFO'],
      [socketPath, 'a socket'],
      ['/proc/self/status', 'on procfs, a kernel interface'],
      ['/sys/kernel/uevent_seqnum', 'on sysfs, a kernel interface'],
    ] as const;

  it('verify file: each could not be checked, with what it is (74)', async () => {
    const paths = specials().map(([path]) => path);
    const result = await json('verify', 'file', ...paths, file('trusted'), '--state-dir', stateDir);
    expect(result.exitCode).toBe(74);
    const { results } = JSON.parse(result.stdout);
    expect(results.map((r: { error?: { message: string } }) => r.error?.message)).toEqual([
      ...specials().map(([path, what]) => `file ${path} is ${what}, not a regular file`),
      undefined,
    ]);
    expect(results.at(-1).status).toBe('TRUSTED');
  });

  it('every other input file: keys, envelopes, roots, snapshots, configuration, hw --measure', async () => {
    const key = file(`keys/${notary}.key`);
    const root = file('root.json');
    const envelope = file('trusted-notarize-notary@example.org.json');
    for (const [path, what] of specials()) {
      for (const argv of [
        ['sign', '--key', key, '--signer', notary, '--file', path, '--out', file('never.json')],
        ['sign', '--key', key, '--signer', notary, '--file', path, '--chunked'],
        ['sign', '--key', path, '--signer', notary, '--digest', contentDigest('x'), '--name', 'x'],
        ['envelope', 'verify', path, '--key', file(`keys/${notary}.pub`)],
        ['envelope', 'verify', envelope, '--key', path],
        ['root', 'verify', path],
        ['log', 'add', file('log'), '--root', path, envelope],
        ['log', 'add', file('log'), '--root', root, path],
        ['snapshot', 'import', path, '--state-dir', file('never-state')],
        ['hw', '--measure', path],
        ['status', '--config', path],
      ]) {
        const result = await cli(...argv);
        expect(result.exitCode, `${argv.join(' ')}: ${result.stderr}`).toBe(74);
        expect(result.stderr).toMatch(` ${path} is ${what}, not a regular file\n`);
      }
    }
    expect(readdirSync(dir)).not.toContain('never.json');
    expect(readdirSync(dir)).not.toContain('never-state');
  });

  it('directories: state dirs, keygen --out, log init, on kernel file systems or special files (74)', async () => {
    const snapshot = file('snapshot.tar');
    expect(
      (await cli('snapshot', 'export', '--out', snapshot, '--state-dir', stateDir)).exitCode,
    ).toBe(0);
    const root = file('root.json');
    const mirror = `file://${file('log/public')}`;
    for (const [target, message] of <[string, string][]>[
      ['/proc/vouch-x', '/proc is on procfs, a kernel interface, not a directory'],
      ['/sys/vouch-x', '/sys is on sysfs, a kernel interface, not a directory'],
      ['/dev/null', '/dev/null is a character device, not a directory'],
      [join(fifo, 'x'), `${fifo} is a FIFO, not a directory`],
    ]) {
      for (const argv of [
        ['keygen', '--signer', 'x', '--out', target],
        [
          'log',
          'init',
          join(target, 'log'),
          '--origin',
          'o.example',
          '--key',
          file('keys/log.key'),
        ],
        ['sync', '--state-dir', target, '--root', root, '--mirror', mirror],
        ['snapshot', 'import', snapshot, '--state-dir', target, '--root', root],
        ['allow', `sha256:${'ab'.repeat(32)}`, '--reason', 'x', '--state-dir', target],
      ]) {
        const result = await cli(...argv);
        expect(result.exitCode, `${argv.join(' ')}: ${result.stderr}`).toBe(74);
        expect(result.stderr).toBe(`vouch: ${message}\n`);
      }
    }
  });

  it('outputs: a FIFO or socket is not replaced by the file (64, FILE_EXISTS)', async () => {
    const key = file(`keys/${notary}.key`);
    for (const out of [fifo, socketPath]) {
      const result = await json(
        'notarize',
        '--key',
        key,
        '--signer',
        notary,
        '--file',
        file('trusted'),
        '--out',
        out,
      );
      expect(result.exitCode).toBe(64);
      expect(JSON.parse(result.stdout).error.code).toBe('FILE_EXISTS');
      const exported = await cli('snapshot', 'export', '--out', out, '--state-dir', stateDir);
      expect(exported.exitCode).toBe(64);
    }
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(statSync(socketPath).isSocket()).toBe(true);
  });
});

describe('names that are not UTF-8', { timeout: 60_000 }, () => {
  // `café` in Latin-1: the byte 0xe9 alone is not UTF-8.
  const latin1 = () => Buffer.concat([Buffer.from(file('caf')), Buffer.of(0xe9)]);

  it('in-process: verify file finds the file by its bytes, JSON has it exactly, text as \\xe9', async () => {
    copyFileSync(file('trusted'), latin1());
    const name = decodeSurrogateEscape(latin1());
    const text = await cli('verify', 'file', name, '--state-dir', stateDir);
    expect(text.exitCode, text.stdout).toBe(0);
    expect(text.stdout).toBe(
      `TRUSTED ${file('caf')}\\xe9 sha256:${contentDigest('trusted')}: ${text.stdout.split(': ').slice(1).join(': ')}`,
    );
    const result = JSON.parse((await json('verify', 'file', name, '--state-dir', stateDir)).stdout);
    expect(result.results[0].subject).toBe(name);
    expect(result.results[0].status).toBe('TRUSTED');
  });

  it('built binary: the arguments come as their bytes (verify, sign, keygen)', () => {
    copyFileSync(file('trusted'), latin1());
    // Node cannot pass bytes that are not UTF-8 as an argument: bash's printf makes them.
    const vouch = (script: string, ...args: string[]) =>
      spawnSync('bash', ['-c', script, 'vouch', process.execPath, cliBundle, ...args], {
        encoding: 'utf8',
        timeout: 20_000,
      });
    const verify = vouch(
      'exec "$1" "$2" verify file "$3$(printf "\\351")" --state-dir "$4" -o json',
      file('caf'),
      stateDir,
    );
    expect(verify.status, verify.stderr).toBe(0);
    const [result] = JSON.parse(verify.stdout).results;
    expect(result.subject).toBe(decodeSurrogateEscape(latin1()));
    expect(result.sha256).toBe(contentDigest('trusted'));
    const text = vouch(
      'exec "$1" "$2" verify file "$3$(printf "\\351")" --state-dir "$4"',
      file('caf'),
      stateDir,
    );
    expect(text.stdout).toMatch(new RegExp(`^TRUSTED ${file('caf')}\\\\xe9 sha256:`));
    // A statement is UTF-8: the file's name cannot be its subject's.
    const key = file(`keys/${notary}.key`);
    const sign = (...extra: string[]) =>
      vouch(
        `exec "$1" "$2" sign --key "$3" --signer "$4" --file "$5$(printf "\\351")" ${extra.join(' ')}`,
        key,
        notary,
        file('caf'),
      );
    const unnamed = sign();
    expect(unnamed.status).toBe(64);
    expect(unnamed.stderr).toBe(
      `vouch: not UTF-8, as a statement must be: caf\\xe9 (a file's subject can be named with --name)\n`,
    );
    const named = sign('--name', 'cafe');
    expect(named.status, named.stderr).toBe(0);
    const statement = JSON.parse(
      Buffer.from(JSON.parse(named.stdout).payload, 'base64').toString(),
    );
    expect(statement.subject).toEqual([
      { name: 'cafe', digest: { sha256: contentDigest('trusted') } },
    ]);
    const keys = vouch(
      'exec "$1" "$2" keygen --signer k --out "$3$(printf "\\377")"',
      file('keys-'),
    );
    expect(keys.status, keys.stderr).toBe(0);
    const made = readdirSync(dir, { encoding: 'buffer' }).find((name) =>
      name.equals(Buffer.from('keys-\xff', 'latin1')),
    );
    expect(made).toBeDefined();
  });

  it('built binary: special files fail at once where they hung (bounded by a kill timeout)', () => {
    for (const argv of [
      ['verify', 'file', '/dev/zero', '--state-dir', stateDir],
      ['verify', 'file', fifo, '--state-dir', stateDir],
      ['keygen', '--signer', 'x', '--out', '/proc/vouch-x'],
    ]) {
      const run = spawnSync(process.execPath, [cliBundle, ...argv], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(run.signal, `${argv.join(' ')} was killed`).toBeNull();
      expect(run.status).toBe(74);
    }
  });
});

describe('text output: input cannot forge a line; JSON is exact', () => {
  it('a file name with \\r and an escape sequence stays on its line', async () => {
    const name = file('x\r\x1b[2KTRUSTED y');
    copyFileSync(file('untrusted'), name);
    const text = await cli('verify', 'file', name, '--state-dir', stateDir);
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toMatch(
      new RegExp(
        `^UNTRUSTED ${file('x')}\\\\r\\\\x1b\\[2KTRUSTED y sha256:[0-9a-f]{64}: [^\\r\\n\\x1b]*\\n$`,
      ),
    );
    const result = JSON.parse((await json('verify', 'file', name, '--state-dir', stateDir)).stdout);
    expect(result.results[0].subject).toBe(name);
  });

  it('a statement’s reason with \\r and colours stays on its line, in verify and envelope verify', async () => {
    const verify = await cli('verify', 'file', file('reasoned'), '--state-dir', stateDir);
    expect(verify.exitCode).toBe(1);
    expect(verify.stdout).toMatch(/^UNTRUSTED .*bad build\\r\\x1b\[32mTRUSTED\\x1b\[0m.*\n$/);
    expect(verify.stdout).not.toMatch(terminalControls);
    const data = JSON.parse(
      (await json('verify', 'file', file('reasoned'), '--state-dir', stateDir)).stdout,
    );
    expect(data.results[0].reason).toContain(forgedReason);
    const envelope = await cli(
      'envelope',
      'verify',
      file('reasoned-untrust-notary@example.org.json'),
      '--key',
      file(`keys/${notary}.pub`),
    );
    expect(envelope.exitCode).toBe(0);
    expect(envelope.stdout).toContain('(bad build\\r\\x1b[32mTRUSTED\\x1b[0m)');
    expect(envelope.stdout).not.toMatch(terminalControls);
  });

  it('log lines quoting input are escaped too (the built binary: the logger writes to fd 2)', () => {
    const run = spawnSync(
      process.execPath,
      [
        cliBundle,
        'sync',
        '--state-dir',
        file('never-synced'),
        '--root',
        file('root.json'),
        '--mirror',
        'file:///nope\r\x1b[31mX',
        // A mirror's failure is logged when another is tried next.
        '--mirror',
        'file:///nope-too',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(run.status).toBe(69);
    expect(run.stderr).toContain('WARN: mirror file:///nope\\r\\x1b[31mX has no checkpoint');
    expect(run.stderr).not.toMatch(terminalControls);
  });

  it('error messages quoting input are escaped on stderr, exact in JSON', async () => {
    const typed = '\x1b]0;owned\x07\rTRUSTED';
    const text = await cli('verify', 'digest', typed);
    expect(text.exitCode).toBe(64);
    expect(text.stderr).toBe(
      'vouch: not a digest (sha256:<64 hex>, the 64 hex alone, or merkle-sha256-1mib:<64 hex>): ' +
        '\\x1b]0;owned\\x07\\rTRUSTED\n',
    );
    const data = JSON.parse((await json('verify', 'digest', typed)).stdout);
    expect(data.error.message).toMatch(new RegExp(`: ${typed.replace(/[\]\\[]/g, '\\$&')}$`));
  });
});

describe('hex digests: one rule, upper case accepted and made lower case', () => {
  const upper = () => contentDigest('trusted').toUpperCase();

  it('sign --digest, verify digest and authenticate --hash take upper case', async () => {
    const key = file(`keys/${notary}.key`);
    const signed = await json(
      'sign',
      '--key',
      key,
      '--signer',
      notary,
      '--digest',
      `SHA256:${upper()}`,
      '--name',
      'x',
    );
    expect(signed.exitCode, signed.stdout).toBe(0);
    const payload = JSON.parse(Buffer.from(JSON.parse(signed.stdout).payload, 'base64').toString());
    expect(payload.subject[0].digest.sha256).toBe(contentDigest('trusted'));
    const bare = await json(
      'sign',
      '--key',
      key,
      '--signer',
      notary,
      '--digest',
      upper(),
      '--name',
      'x',
    );
    expect(bare.exitCode).toBe(0);
    const verified = JSON.parse(
      (await json('verify', 'digest', upper(), '--state-dir', stateDir)).stdout,
    );
    expect(verified.results[0]).toMatchObject({
      status: 'TRUSTED',
      sha256: contentDigest('trusted'),
    });
    const auth = await json('authenticate', '--hash', `sha256:${upper()}`, '--state-dir', stateDir);
    expect(auth.exitCode).toBe(0);
    expect(JSON.parse(auth.stdout).hash).toBe(contentDigest('trusted'));
  });

  it('allow takes an image ID in upper case, recorded in lower case', async () => {
    const target = mkdtempSync(join(tmpdir(), 'vouch-allow-case-'));
    const result = await runCli(
      [
        'allow',
        `SHA256:${'AB'.repeat(32)}`,
        '--reason',
        'x',
        '--state-dir',
        target,
        '-o',
        'json',
        '--log-level',
        'silent',
      ],
      { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    );
    expect(result.exitCode, result.stdout).toBe(0);
    expect(JSON.parse(result.stdout).added.image).toBe(`sha256:${'ab'.repeat(32)}`);
  });

  it('a bad one gets the same message from sign and authenticate', async () => {
    const bad = 'sha256:xyz';
    const key = file(`keys/${notary}.key`);
    const signed = await json(
      'sign',
      '--key',
      key,
      '--signer',
      notary,
      '--digest',
      bad,
      '--name',
      'x',
    );
    const auth = await json('authenticate', '--hash', bad, '--state-dir', stateDir);
    const message = 'not a SHA-256 digest (sha256:<64 hex>, or the 64 hex alone): sha256:xyz';
    for (const result of [signed, auth]) {
      expect(result.exitCode).toBe(64);
      expect(JSON.parse(result.stdout).error).toEqual({ code: 'USAGE', message });
    }
  });
});
