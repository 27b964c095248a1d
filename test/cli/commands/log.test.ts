import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../agent/core/checkpoint';
import { verifyCosignatures } from '../../../agent/core/cosignature';
import { serializeEnvelope } from '../../../agent/core/dsse';
import { KeyType, parseVerifierString } from '../../../agent/core/keys';
import { hashLeaf, verifyConsistency, verifyInclusion } from '../../../agent/core/merkle';
import { runCli } from '../../helpers/cli';
import { verifyPublished } from '../../helpers/log';
import { signedStatement, signRoot, testKey, testRoot } from '../../helpers/trust';

const work = mkdtempSync(join(tmpdir(), 'vouch-cli-log-'));
const origin = 'log.example.org/vouch';
const logKey = testKey(origin);
const rootKey = testKey('root-1');
const notary = testKey('notary@example.org');

function write(name: string, content: string | Uint8Array, mode = 0o644): string {
  const path = join(work, name);
  writeFileSync(path, content, { mode });
  return path;
}

const logKeyPath = write('log.key', logKey.privatePem, 0o600);
const witnessKeyPath = write('witness.example-w1.key', testKey('w').privatePem, 0o600);
const rootPath = write(
  'root.json',
  serializeEnvelope(
    signRoot(
      testRoot({
        rootKeys: [rootKey.public],
        threshold: 1,
        log: { origin, key: logKey.public },
        signers: [{ id: 'notary@example.org', keys: [notary.public], scopes: ['**'] }],
      }),
      [rootKey],
    ),
  ),
);
const statements = Array.from({ length: 5 }, (_, i) =>
  signedStatement(notary, {
    signer: 'notary@example.org',
    subjects: [{ name: `ghcr.io/home-assistant/app-${i}`, sha256: 'cd'.repeat(32) }],
  }),
);
const envelopes = statements.map((bytes, i) => write(`statement-${i}.json`, bytes));

/** What is in the log directory, to show that a failed command changed nothing. */
function contents(dir: string): string {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((name) => {
      try {
        return `${name}:${readFileSync(join(dir, name)).toString('base64')}`;
      } catch {
        return name;
      }
    })
    .join('\n');
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('vouch log', () => {
  const dir = join(work, 'log');

  beforeAll(async () => {
    const init = await runCli(['log', 'init', dir, '--origin', origin, '--key', logKeyPath]);
    expect(init).toMatchObject({ exitCode: 0, stderr: '' });
    expect(parseVerifierString(init.stdout.trim()).raw).toEqual(logKey.public.raw);
  });

  it('init prints the verifier string, and refuses a used directory or a readable key', async () => {
    const other = join(work, 'log-2');
    const result = await runCli([
      'log',
      'init',
      other,
      '--origin',
      origin,
      '--key',
      logKeyPath,
      '-o',
      'json',
    ]);
    expect(json(result.stdout)).toEqual({
      dir: other,
      origin,
      verifier: expect.stringMatching(/^log\.example\.org\/vouch\+[0-9a-f]{8}\+A/),
      key: logKeyPath,
      root: null,
    });
    expect(
      (await runCli(['log', 'init', other, '--origin', origin, '--key', logKeyPath])).exitCode,
    ).toBe(64);
    const readable = write('readable.key', logKey.privatePem, 0o644);
    const refused = await runCli([
      'log',
      'init',
      join(work, 'log-3'),
      '--origin',
      origin,
      '--key',
      readable,
    ]);
    expect(refused.exitCode).toBe(65);
    expect(refused.stderr).toMatch(/chmod 600/);
  });

  it('adds verified statements, publishes them, and proves inclusion and consistency', async () => {
    const first = await runCli([
      'log',
      'add',
      dir,
      '--root',
      rootPath,
      envelopes[0] as string,
      '-o',
      'json',
    ]);
    expect(first.exitCode).toBe(0);
    expect(json(first.stdout)).toMatchObject({ added: 1, size: 1 });
    expect((await runCli(['log', 'publish', dir])).exitCode).toBe(0);

    const rest = await runCli(['log', 'add', dir, '--root', rootPath, ...envelopes.slice(1)]);
    expect(rest).toMatchObject({
      exitCode: 0,
      stdout: 'added 4 entries at 1..4; 5 committed (run vouch log publish)\n',
    });
    const published = await runCli(['log', 'publish', dir, '-o', 'json']);
    expect(json(published.stdout)).toMatchObject({
      origin,
      previousSize: 1,
      size: 5,
      tiles: 1,
      bundles: 1,
    });
    expect((await verifyPublished(dir)).size).toBe(5);

    const inclusion = await runCli(['log', 'proof', dir, '--index', '3']);
    expect(inclusion.exitCode).toBe(0);
    const proof = json(inclusion.stdout);
    expect(Object.keys(proof)).toEqual(['index', 'size', 'root', 'proof']);
    expect(proof).toMatchObject({ index: 3, size: 5 });
    const b64 = (text: unknown) => new Uint8Array(Buffer.from(text as string, 'base64'));
    verifyInclusion(
      3,
      5,
      hashLeaf(statements[3] as Uint8Array),
      (proof.proof as string[]).map(b64),
      b64(proof.root),
    );

    const consistency = json(
      (await runCli(['log', 'proof', dir, '--old', '1', '-o', 'json'])).stdout,
    );
    expect(Object.keys(consistency)).toEqual(['old', 'size', 'root', 'proof']);
    const root1 = hashLeaf(statements[0] as Uint8Array);
    verifyConsistency(1, 5, root1, b64(consistency.root), (consistency.proof as string[]).map(b64));

    const smaller = json(
      (await runCli(['log', 'proof', dir, '--index', '0', '--size', '3'])).stdout,
    );
    expect(smaller).toMatchObject({ index: 0, size: 3 });
  });

  it.each([
    [['--index', 'abc'], 64],
    [['--index', '01'], 64],
    [['--index', '-1'], 64],
    [['--index', '1.5'], 64],
    [['--index', '99999999999999999999'], 64],
    [['--index', '9007199254740992'], 64],
    [[], 64],
    [['--index', '0', '--old', '1'], 64],
    [['--index', '99'], 65],
    [['--index', '0', '--size', '99'], 65],
    [['--old', '0'], 65],
  ])('proof %j exits %d', async (flags, exitCode) => {
    expect((await runCli(['log', 'proof', join(work, 'log'), ...flags])).exitCode).toBe(exitCode);
  });

  it.each([
    ['garbage', Buffer.from('not json'), 'ENVELOPE_INVALID'],
    ['not UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), 'ENVELOPE_INVALID'],
    ['over 65535 bytes', Buffer.alloc(70_000, 0x20), 'PAYLOAD_TOO_LARGE'],
    ['already logged', null, 'ENTRY_DUPLICATE'],
    [
      'signed by a stranger',
      signedStatement(testKey('stranger'), {
        signer: 'notary@example.org',
        subjects: [{ name: 'x', sha256: 'ab'.repeat(32) }],
      }),
      'SIGNATURE_INVALID',
    ],
  ])(
    'add refuses an envelope that is %s, appending nothing (exit 65)',
    async (_what, bytes, code) => {
      const dir = join(work, 'log');
      const bad = bytes === null ? (envelopes[2] as string) : write(`bad-${code}.json`, bytes);
      const good = write(
        `good-${code}.json`,
        signedStatement(notary, {
          signer: 'notary@example.org',
          subjects: [{ name: `fresh-${code}`, sha256: 'ef'.repeat(32) }],
        }),
      );
      const before = contents(dir);
      const result = await runCli(['log', 'add', dir, '--root', rootPath, good, bad, '-o', 'json']);
      expect(result.exitCode).toBe(65);
      expect((json(result.stdout).error as { code: string }).code).toBe(code);
      expect(contents(dir)).toBe(before);
    },
  );

  it('add refuses a root that does not name this log, or is not signed', async () => {
    const dir = join(work, 'log');
    const otherLog = write(
      'other-root.json',
      serializeEnvelope(
        signRoot(testRoot({ rootKeys: [rootKey.public], threshold: 1 }), [rootKey]),
      ),
    );
    const unsigned = write(
      'unsigned-root.json',
      serializeEnvelope(
        signRoot(
          testRoot({
            rootKeys: [rootKey.public],
            threshold: 1,
            log: { origin, key: logKey.public },
          }),
          [],
        ),
      ),
    );
    const good = write(
      'good-root.json',
      signedStatement(notary, {
        signer: 'notary@example.org',
        subjects: [{ name: 'fresh-root', sha256: 'ef'.repeat(32) }],
      }),
    );
    for (const root of [otherLog, unsigned]) {
      const result = await runCli(['log', 'add', dir, '--root', root, good]);
      expect(result.exitCode).toBe(65);
    }
  });

  it('init --root serves the root, and add then checks against it (--publish publishes)', async () => {
    const served = join(work, 'served');
    const init = await runCli([
      ...['log', 'init', served, '--origin', origin, '--key', logKeyPath, '--root', rootPath],
      ...['-o', 'json'],
    ]);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(json(init.stdout).root).toBe(1);
    expect(readFileSync(join(served, 'public', 'roots', '1.json'))).toEqual(readFileSync(rootPath));
    const add = await runCli(['log', 'add', served, '--publish', envelopes[0] as string]);
    expect(add.exitCode, add.stderr).toBe(0);
    expect(add.stdout).toBe('added 1 entries at 0..0; 1 committed, published\n');
    expect(readFileSync(join(served, 'public', 'checkpoint'), 'utf8')).toMatch(
      /^log\.example\.org\/vouch\n1\n/,
    );
    // A root for another log: refused before the log directory is made.
    const otherRoot = write(
      'other-root.json',
      serializeEnvelope(
        signRoot(
          testRoot({
            rootKeys: [rootKey.public],
            threshold: 1,
            log: { origin: 'other.example/log', key: testKey('other.example/log').public },
          }),
          [rootKey],
        ),
      ),
    );
    const refused = await runCli([
      'log',
      'init',
      join(work, 'never'),
      '--origin',
      origin,
      '--key',
      logKeyPath,
      '--root',
      otherRoot,
    ]);
    expect(refused.exitCode).toBe(65);
    expect(readdirSync(work)).not.toContain('never');
  });

  it('add without --root needs a root the log serves, and says how to give one', async () => {
    const bare = join(work, 'bare');
    expect(
      (await runCli(['log', 'init', bare, '--origin', origin, '--key', logKeyPath])).exitCode,
    ).toBe(0);
    const before = contents(bare);
    const add = await runCli(['log', 'add', bare, envelopes[0] as string]);
    expect(add.exitCode).toBe(64);
    expect(add.stderr).toBe(
      `vouch: ${bare} serves no trust root to check statements against: give --root ROOT, or publish one (vouch log publish-root ${bare} ROOT)\n`,
    );
    expect(contents(bare)).toBe(before);
  });

  it('add names the refused file, its signer and whose key signed it, and appends nothing', async () => {
    const dir = join(work, 'log');
    const before = contents(dir);
    const stranger = write(
      'by-stranger.json',
      signedStatement(testKey('stranger'), {
        signer: 'stranger',
        subjects: [{ name: 'x', sha256: 'ef'.repeat(32) }],
      }),
    );
    const result = await runCli([
      'log',
      'add',
      dir,
      '--root',
      rootPath,
      envelopes[0] as string,
      stranger,
    ]);
    expect(result.exitCode).toBe(65);
    expect(result.stderr).toBe(
      `vouch: ${stranger}: names signer stranger, which trust root v1 does not list (it lists notary@example.org); ` +
        'no key of trust root v1 signed it: add the signer to the trust root ' +
        '(vouch root add-signer ROOT --id stranger --key PUBLIC-KEY, then sign the root again)\n',
    );
    expect(contents(dir)).toBe(before);
    // Two refused: one line naming both (it printed a literal "\n" between them before).
    const twice = await runCli(['log', 'add', dir, '--root', rootPath, stranger, stranger]);
    expect(twice.exitCode).toBe(65);
    expect(twice.stderr).toMatch(
      new RegExp(
        `^vouch: 2 of 2 envelopes refused, nothing appended: ${stranger}: names signer stranger.*; ${stranger}: names signer stranger.*\n$`,
      ),
    );
    expect(twice.stderr).not.toContain('\\n');
    expect(contents(dir)).toBe(before);
  });

  it('cosign adds a witness cosignature a quorum check accepts', async () => {
    const result = await runCli([
      'log',
      'cosign',
      join(work, 'log'),
      '--key',
      witnessKeyPath,
      '-o',
      'json',
    ]);
    expect(result.exitCode).toBe(0);
    const data = json(result.stdout);
    expect(data).toMatchObject({ witness: 'witness.example-w1', size: 5 });
    const witness = parseVerifierString(data.verifier as string);
    expect(witness.type).toBe(KeyType.Cosignature);
    const { note } = openCheckpoint(
      readFileSync(join(work, 'log', 'public', 'checkpoint')),
      logKey.public,
    );
    expect(verifyCosignatures(note, [witness], 1)).toEqual([
      { name: 'witness.example-w1', timestamp: data.timestamp },
    ]);
  });

  it.each([
    ['malformed', 'log.example.org/vouch\n5\n'],
    ['oversized', `${'x'.repeat(300_000)}\n\n\u2014 a AAAAAAE=\n`],
    ['with a control character', 'log.example.org/vouch\n5\u0007\nAAAA\n\n\u2014 a AAAAAAE=\n'],
  ])(
    'publish and cosign refuse a %s checkpoint (exit 65), changing nothing',
    async (_what, text) => {
      const dir = join(work, `bad-${_what}`);
      await runCli(['log', 'init', dir, '--origin', origin, '--key', logKeyPath]);
      await runCli(['log', 'add', dir, '--root', rootPath, envelopes[0] as string]);
      writeFileSync(join(dir, 'public', 'checkpoint'), text);
      const before = contents(dir);
      expect((await runCli(['log', 'publish', dir])).exitCode).toBe(65);
      expect((await runCli(['log', 'cosign', dir, '--key', witnessKeyPath])).exitCode).toBe(65);
      expect((await runCli(['log', 'proof', dir, '--index', '0'])).exitCode).toBe(65);
      expect(contents(dir)).toBe(before);
    },
  );

  it('serve listens until SIGTERM and answers over HTTP', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'agent/cli/main.ts',
        'log',
        'serve',
        join(work, 'log'),
        '--listen',
        '127.0.0.1:0',
        '-o',
        'json',
      ],
      { cwd: join(__dirname, '../../..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout });
    const [first] = (await once(lines, 'line')) as [string];
    const { url } = JSON.parse(first) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const response = await fetch(`${url}checkpoint`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(
      readFileSync(join(work, 'log', 'public', 'checkpoint'), 'utf8'),
    );
    const rest: string[] = [];
    lines.on('line', (line) => rest.push(line));
    child.kill('SIGTERM');
    await once(child, 'exit');
    expect(child.exitCode).toBe(0);
    expect(JSON.parse(rest.join('\n'))).toEqual({ url, stopped: 'SIGTERM' });
  });

  it('serve refuses a bad listen address', async () => {
    expect(
      (await runCli(['log', 'serve', join(work, 'log'), '--listen', 'localhost'])).exitCode,
    ).toBe(64);
    expect(
      (await runCli(['log', 'serve', join(work, 'log'), '--listen', '127.0.0.1:70000'])).exitCode,
    ).toBe(64);
  });
});
