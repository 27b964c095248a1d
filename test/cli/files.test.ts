import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPrivateKeyFile, readPublicKey, sha256File } from '../../agent/cli/files';
import { KeyType, verifierString } from '../../agent/core/keys';
import { rejectsWith } from '../helpers/errors';
import { testKey } from '../helpers/trust';

const dir = mkdtempSync(join(tmpdir(), 'vouch-files-'));

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

  it('says a public key given for a private one is a public key, before the mode check', async () => {
    const verifier = verifierString(key.public);
    const cases: [string, string, string][] = [
      ['me.pub', key.publicPem, `, e.g. ${join(dir, 'me.key')}`],
      ['me.txt', `${verifier}\n`, ''],
    ];
    for (const [name, text, hint] of cases) {
      const path = join(dir, name);
      // Mode 0644, as keygen writes a .pub: not a permission problem.
      writeFileSync(path, text);
      chmodSync(path, 0o644);
      const error = await rejectsWith(readPrivateKeyFile(path), 'BAD_KEY');
      expect(error.message).toBe(`${path} is a public key; sign with the private key${hint}`);
    }
  });

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

describe('file digests', () => {
  it('hashes a file in a stream', async () => {
    const content = Buffer.alloc(3 * 1024 * 1024 + 7, 'z');
    writeFileSync(join(dir, 'big'), content);
    expect(await sha256File(join(dir, 'big'))).toBe(
      createHash('sha256').update(content).digest('hex'),
    );
    await rejectsWith(sha256File(join(dir, 'none')), 'IO');
  });
});
