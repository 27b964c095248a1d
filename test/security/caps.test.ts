import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPrivateKeyFile, readPublicKey } from '../../agent/cli/files';
import { parseEnvelope } from '../../agent/core/dsse';
import { verifierString } from '../../agent/core/keys';
import { parseNote } from '../../agent/core/note';
import { encodeRoot, parseRoot } from '../../agent/core/root';
import { encodeStatement, parseStatement } from '../../agent/core/statement';
import { readAddonOptions } from '../../agent/device/addon';
import { readTokenFile } from '../../agent/device/agent/api';
import { readAllowList } from '../../agent/device/docker/allow';
import { expectVouchError, rejectsWith } from '../helpers/errors';
import { testKey, testRoot } from '../helpers/trust';

/**
 * The input caps that docs/security.md lists and no other test shows: each input one item
 * or byte over its cap is refused with a typed error, and at its cap is read. The others are
 * shown where their inputs are tested (the table in docs/security.md names each test).
 */

const bytes = (value: unknown) => new Uint8Array(Buffer.from(JSON.stringify(value)));
const key = testKey('notary@example.org');

describe('caps on what signers and the log send', () => {
  it('an envelope carries at most 64 signatures', () => {
    const envelope = (count: number) =>
      bytes({
        payloadType: 'application/vnd.in-toto+json',
        payload: '',
        signatures: Array.from({ length: count }, (_, i) => ({
          sig: Buffer.alloc(64, i).toString('base64'),
        })),
      });
    expect(parseEnvelope(envelope(64)).signatures).toHaveLength(64);
    expectVouchError(() => parseEnvelope(envelope(65)), 'ENVELOPE_INVALID');
  });

  it('a statement names at most 1024 subjects, of names up to 1024 characters, with a reason up to 4096', () => {
    const statement = (subjects: number, nameLength: number, reasonLength: number) => {
      const payload = encodeStatement({
        subjects: [{ name: 'n', sha256: 'a'.repeat(64) }],
        status: 'trusted',
        signer: 'notary@example.org',
        issuedAt: new Date('2025-06-01T00:00:00Z'),
      });
      const document = JSON.parse(Buffer.from(payload).toString('utf8'));
      document.subject = Array.from({ length: subjects }, (_, i) => ({
        name: `${i}`.padEnd(nameLength, 'n'),
        digest: { sha256: 'a'.repeat(64) },
      }));
      document.predicate.reason = 'r'.repeat(reasonLength);
      return bytes(document);
    };
    expect(parseStatement(statement(1024, 1024, 4096)).subjects).toHaveLength(1024);
    for (const over of [statement(1025, 8, 0), statement(1, 1025, 0), statement(1, 8, 4097)]) {
      expectVouchError(() => parseStatement(over), 'STATEMENT_INVALID');
    }
  });

  it('a root lists at most 32 keys per list and 1024 signers', () => {
    const document = JSON.parse(
      Buffer.from(encodeRoot(testRoot({ rootKeys: [key.public], threshold: 1 }))).toString('utf8'),
    );
    const verifiers = (count: number, prefix: string) =>
      Array.from({ length: count }, (_, i) => verifierString(testKey(`${prefix}${i}`).public));
    const signerKeys = verifiers(1025, 's');
    const signer = (i: number) => ({ id: `s${i}`, keys: [signerKeys[i]], scopes: ['**'] });
    const atCap = {
      ...document,
      signers: Array.from({ length: 1024 }, (_, i) => signer(i)),
    };
    expect(parseRoot(bytes(atCap)).signers).toHaveLength(1024);
    const over = [
      { ...document, rootKeys: verifiers(33, 'r') },
      { ...document, signers: [{ ...signer(0), keys: verifiers(33, 'k') }] },
      { ...document, signers: Array.from({ length: 1025 }, (_, i) => signer(i)) },
    ];
    for (const root of over) {
      const error = expectVouchError(() => parseRoot(bytes(root)), 'ROOT_INVALID');
      expect(error.message).toMatch(/too big|<=/);
    }
  });

  it('a note is at most 256 KiB with at most 100 signature lines', () => {
    const line = '\u2014 a AAAAAAE=\n';
    expect(parseNote(`text\n\n${line.repeat(100)}`).signatures).toHaveLength(100);
    expectVouchError(() => parseNote(`text\n\n${line.repeat(101)}`), 'NOTE_INVALID');
    // The cap counts UTF-8 bytes (the em dash is three).
    const text = 256 * 1024 - Buffer.byteLength(`\n${line}`);
    expect(parseNote(`${'t'.repeat(text - 1)}\n\n${line}`).text).toHaveLength(text);
    const error = expectVouchError(
      () => parseNote(`${'t'.repeat(text)}\n\n${line}`),
      'NOTE_INVALID',
    );
    expect(error.message).toBe('note is larger than 262144 bytes');
  });
});

describe('caps on local files', () => {
  it('key files: 16 KiB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-caps-'));
    const private_ = join(dir, 'big.key');
    await writeFile(private_, key.privatePem.padEnd(16 * 1024 + 1, '\n'), { mode: 0o600 });
    await rejectsWith(readPrivateKeyFile(private_), 'PAYLOAD_TOO_LARGE');
    const public_ = join(dir, 'big.pub');
    await writeFile(public_, key.publicPem.padEnd(16 * 1024 + 1, '\n'));
    await rejectsWith(readPublicKey(public_), 'PAYLOAD_TOO_LARGE');
    await writeFile(public_, key.publicPem.padEnd(16 * 1024, '\n'));
    expect((await readPublicKey(public_)).raw).toEqual(key.public.raw);
  });

  it('the API token file: 4 KiB', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'vouch-caps-')), 'api.token');
    const token = 'aaaabbbbccccdddd0123456789abcdef';
    await writeFile(path, token.padEnd(4096 + 1, '\n'), { mode: 0o600 });
    await rejectsWith(readTokenFile(path), 'PAYLOAD_TOO_LARGE');
    await writeFile(path, token.padEnd(4096, '\n'));
    expect(await readTokenFile(path)).toBe(token);
  });

  it("the add-on's options.json: 1 MiB", async () => {
    const prefix = await mkdtemp(join(tmpdir(), 'vouch-caps-'));
    await mkdir(join(prefix, 'data'));
    await writeFile(join(prefix, 'data/options.json'), `{}${' '.repeat(2 ** 20 - 1)}`);
    await rejectsWith(readAddonOptions(prefix), 'PAYLOAD_TOO_LARGE');
  });

  it('allow.json: 4 MiB', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'vouch-caps-'));
    const path = join(stateDir, 'allow.json');
    const empty = '{"format":"vouch-allow/v1","entries":[]}';
    await writeFile(path, empty.padEnd(4 * 2 ** 20 + 1, ' '));
    await rejectsWith(readAllowList(stateDir), 'PAYLOAD_TOO_LARGE');
    await writeFile(path, empty.padEnd(4 * 2 ** 20, ' '));
    expect(await readAllowList(stateDir)).toEqual([]);
  });
});
