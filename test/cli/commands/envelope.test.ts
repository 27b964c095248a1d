import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  addSignature,
  parseEnvelope,
  serializeEnvelope,
  signEnvelope,
} from '../../../agent/core/dsse';
import { verifierString } from '../../../agent/core/keys';
import { runCli } from '../../helpers/cli';
import { signedStatement, testKey } from '../../helpers/trust';

const dir = mkdtempSync(join(tmpdir(), 'vouch-envelope-'));
const notary = testKey('notary');
const other = testKey('other');
writeFileSync(join(dir, 'notary.pub'), notary.publicPem);
writeFileSync(join(dir, 'other.pub'), other.publicPem);
const subject = { name: 'ghcr.io/home-assistant/core:1', sha256: 'c'.repeat(64) };

function write(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const good = write(
  'good.json',
  signedStatement(notary, { signer: 'notary', subjects: [subject], reason: 'ok' }),
);

describe('vouch envelope verify', () => {
  it('exits 0 and shows the statement when a given key signed it (PEM or verifier string)', async () => {
    const result = await runCli(['envelope', 'verify', '--key', join(dir, 'notary.pub'), good]);
    expect(result).toEqual({
      exitCode: 0,
      stdout:
        `${good}: valid, signed by notary\n` +
        'trusted by notary at 2025-06-01T00:00:00Z (ok)\n' +
        `  ghcr.io/home-assistant/core:1 sha256:${'c'.repeat(64)}\n`,
      stderr: '',
    });
    const json = await runCli([
      'envelope',
      'verify',
      '--key',
      verifierString(notary.public),
      good,
      '-o',
      'json',
    ]);
    expect(JSON.parse(json.stdout)).toEqual({
      valid: true,
      signedBy: [verifierString(notary.public)],
      statement: {
        subjects: [subject],
        status: 'trusted',
        signer: 'notary',
        issuedAt: '2025-06-01T00:00:00Z',
        reason: 'ok',
      },
    });
  });

  it('exits 1 and says why when no given key signed it', async () => {
    const result = await runCli(['envelope', 'verify', '--key', join(dir, 'other.pub'), good]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe(
      `${good}: not valid: 0 valid signature(s) by the given keys, 1 required\n`,
    );
    const json = await runCli([
      'envelope',
      'verify',
      '--key',
      join(dir, 'other.pub'),
      good,
      '-o',
      'json',
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: false, code: 'SIGNATURE_INVALID' });
  });

  it('counts distinct keys for --threshold', async () => {
    const both = write(
      'both.json',
      serializeEnvelope(
        addSignature(
          parseEnvelope(
            new Uint8Array(
              Buffer.from(signedStatement(notary, { signer: 'notary', subjects: [subject] })),
            ),
          ),
          other.private,
        ),
      ),
    );
    const keys = ['--key', join(dir, 'notary.pub'), '--key', join(dir, 'other.pub')];
    expect((await runCli(['envelope', 'verify', ...keys, '--threshold', '2', both])).exitCode).toBe(
      0,
    );
    expect((await runCli(['envelope', 'verify', ...keys, '--threshold', '2', good])).exitCode).toBe(
      1,
    );
    // The same key twice is one key.
    const twice = ['--key', join(dir, 'notary.pub'), '--key', verifierString(notary.public)];
    expect(
      (await runCli(['envelope', 'verify', ...twice, '--threshold', '2', good])).exitCode,
    ).toBe(1);
    expect((await runCli(['envelope', 'verify', ...keys, '--threshold', '0', good])).exitCode).toBe(
      64,
    );
  });

  const valid = JSON.parse(
    Buffer.from(signedStatement(notary, { signer: 'notary', subjects: [subject] })).toString(),
  );
  const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString();
  it.each([
    ['garbage', 'garbage', 'ENVELOPE_INVALID'],
    ['truncated JSON', JSON.stringify(valid).slice(0, 50), 'ENVELOPE_INVALID'],
    ['invalid base64', JSON.stringify({ ...valid, payload: '%%%' }), 'ENVELOPE_INVALID'],
    [
      'duplicate signatures',
      JSON.stringify({ ...valid, signatures: [valid.signatures[0], valid.signatures[0]] }),
      'SIGNATURE_DUPLICATE',
    ],
    [
      'an unknown payload type',
      serializeEnvelope(signEnvelope('text/plain', new Uint8Array(2), notary.private)),
      'PAYLOAD_TYPE_UNKNOWN',
    ],
    [
      'a payload over 1 MiB',
      serializeEnvelope(
        signEnvelope(
          'application/vnd.in-toto+json',
          new Uint8Array(1024 * 1024 + 1),
          notary.private,
        ),
      ),
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'a signed payload that is no statement',
      serializeEnvelope(
        signEnvelope(
          'application/vnd.in-toto+json',
          new Uint8Array(Buffer.from('{}')),
          notary.private,
        ),
      ),
      'STATEMENT_INVALID',
    ],
  ])('refuses %s with exit 65 and a clear message', async (what, content, code) => {
    const path = write(`bad-${what.replaceAll(' ', '-')}.json`, content);
    const result = await runCli([
      'envelope',
      'verify',
      '--key',
      join(dir, 'notary.pub'),
      path,
      '-o',
      'json',
    ]);
    expect(result.exitCode).toBe(65);
    expect(JSON.parse(result.stdout).error.code).toBe(code);
  });

  it.each([
    ['a P-256 key', p256, /expected an Ed25519 key, got EC/],
    ['an RSA key', rsa, /expected an Ed25519 key, got RSA/],
    ['garbage', 'not a key', /not a verifier string/],
  ])('refuses %s as the key with exit 65', async (what, content, message) => {
    const path = write(`${what.replaceAll(' ', '-')}.pub`, content);
    const result = await runCli(['envelope', 'verify', '--key', path, good]);
    expect(result.exitCode).toBe(65);
    expect(result.stderr).toMatch(message);
  });
});
