import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  readFileCapped,
  readPrivateKeyFile,
  readPublicKey,
  sha256File,
  writeFileAtomic,
} from '../../agent/cli/files';
import { VouchError } from '../../agent/core/errors';
import { KeyType, verifierString } from '../../agent/core/keys';
import { testKey } from '../helpers/trust';

const dir = mkdtempSync(join(tmpdir(), 'vouch-files-'));

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<VouchError> {
  const error = await promise.then(
    () => expect.unreachable(`expected ${code}`),
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(VouchError);
  expect((error as VouchError).code).toBe(code);
  return error as VouchError;
}

describe('key files', () => {
  const key = testKey('signer');

  it.each(['644', '640', '604', '660', '602', '620'])(
    'refuses a private key with mode %s: KEY_PERMISSIONS',
    async (octal) => {
      const mode = Number.parseInt(octal, 8);
      const path = join(dir, `open-${mode.toString(8)}.key`);
      writeFileSync(path, key.privatePem);
      chmodSync(path, mode);
      const error = await rejectsWith(readPrivateKeyFile(path), 'KEY_PERMISSIONS');
      expect(error.message).toContain(`chmod 600 ${path}`);
    },
  );

  it('reads a private key with mode 0600 or 0400', async () => {
    for (const mode of [0o600, 0o400]) {
      const path = join(dir, `ok-${mode.toString(8)}.key`);
      writeFileSync(path, key.privatePem);
      chmodSync(path, mode);
      expect((await readPrivateKeyFile(path)).raw).toEqual(key.private.raw);
    }
  });

  it('reads public keys as verifier strings, files holding one, or PEM files named by file or option', async () => {
    const verifier = verifierString(key.public);
    expect((await readPublicKey(verifier)).name).toBe('signer');
    writeFileSync(join(dir, 'v.txt'), `${verifier}\n`);
    expect((await readPublicKey(join(dir, 'v.txt'))).name).toBe('signer');
    writeFileSync(join(dir, 'notary@example.org.pub'), key.publicPem);
    const fromPem = await readPublicKey(join(dir, 'notary@example.org.pub'));
    expect(fromPem.name).toBe('notary@example.org');
    expect(fromPem.raw).toEqual(key.public.raw);
    const named = await readPublicKey(join(dir, 'notary@example.org.pub'), {
      name: 'log.example/x',
      type: KeyType.Cosignature,
    });
    expect([named.name, named.type]).toEqual(['log.example/x', KeyType.Cosignature]);
    await rejectsWith(readPublicKey(join(dir, 'missing.pub')), 'IO');
    writeFileSync(join(dir, 'garbage.pub'), 'garbage');
    const error = await rejectsWith(readPublicKey(join(dir, 'garbage.pub')), 'BAD_KEY');
    expect(error.message).toMatch(/garbage\.pub: not a verifier string/);
  });
});

describe('capped reads and atomic writes', () => {
  it('refuses a file over the cap and reads one at the cap', async () => {
    writeFileSync(join(dir, 'ten'), '0123456789');
    expect(await readFileCapped(join(dir, 'ten'), 10, 'x')).toHaveLength(10);
    await rejectsWith(readFileCapped(join(dir, 'ten'), 9, 'x'), 'PAYLOAD_TOO_LARGE');
  });

  it('writes atomically, replaces unless exclusive, and leaves no temp file behind', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const path = join(sub, 'out.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, 'two');
    expect(readFileSync(path, 'utf8')).toBe('two');
    await rejectsWith(writeFileAtomic(path, 'three', { exclusive: true }), 'FILE_EXISTS');
    expect(readFileSync(path, 'utf8')).toBe('two');
    await rejectsWith(writeFileAtomic(join(sub, 'no/such/dir'), 'x'), 'IO');
    expect(readdirSync(sub)).toEqual(['out.json']);
  });

  it('hashes a file in a stream', async () => {
    const content = Buffer.alloc(3 * 1024 * 1024 + 7, 'z');
    writeFileSync(join(dir, 'big'), content);
    expect(await sha256File(join(dir, 'big'))).toBe(
      createHash('sha256').update(content).digest('hex'),
    );
    await rejectsWith(sha256File(join(dir, 'none')), 'IO');
  });
});
