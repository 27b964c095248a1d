import { describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import { namePublicKey } from '../../agent/core/keys';
import { addEnvelopes, readEntries, readState } from '../../agent/ledger';
import { tempLog, testOrigin } from '../helpers/log';
import { signedStatement, testKey, testRoot } from '../helpers/trust';

async function rejection(promise: Promise<unknown>): Promise<VouchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

const rootKey = testKey('root-1');
const notary = testKey('notary@example.org');
const subject = (name: string) => ({ name, sha256: 'ab'.repeat(32) });
const now = new Date('2025-07-01T00:00:00Z');

async function setup() {
  const log = await tempLog();
  const root = testRoot({
    rootKeys: [rootKey.public],
    threshold: 1,
    log: { origin: testOrigin, key: namePublicKey(testOrigin, log.key.raw) },
    signers: [
      { id: 'notary@example.org', keys: [notary.public], scopes: ['ghcr.io/home-assistant/*'] },
    ],
  });
  return { ...log, root };
}

describe('addEnvelopes', () => {
  it('appends authorized statements as the envelope bytes given', async () => {
    const { dir, root } = await setup();
    const envelopes = ['ghcr.io/home-assistant/a', 'ghcr.io/home-assistant/b'].map((name) =>
      signedStatement(notary, { signer: 'notary@example.org', subjects: [subject(name)] }),
    );
    const added = await addEnvelopes(dir, root, envelopes, now);
    expect(added).toMatchObject({ first: 0, size: 2 });
    expect(added.statements.map((s) => s.signer)).toEqual([
      'notary@example.org',
      'notary@example.org',
    ]);
    expect(await readEntries(dir, 0, 2)).toEqual(envelopes);
  });

  it('appends nothing when one envelope is not authorized or is a duplicate', async () => {
    const { dir, root } = await setup();
    const good = signedStatement(notary, {
      signer: 'notary@example.org',
      subjects: [subject('ghcr.io/home-assistant/a')],
    });
    const cases: [Uint8Array, string][] = [
      [
        signedStatement(notary, {
          signer: 'notary@example.org',
          subjects: [subject('docker.io/evil')],
        }),
        'SIGNER_OUT_OF_SCOPE',
      ],
      [
        signedStatement(testKey('stranger'), {
          signer: 'notary@example.org',
          subjects: [subject('ghcr.io/home-assistant/a')],
        }),
        'SIGNATURE_INVALID',
      ],
      [Buffer.from('{"payloadType":'), 'ENVELOPE_INVALID'],
      [good, 'ENTRY_DUPLICATE'],
    ];
    for (const [bad, code] of cases) {
      const error = await rejection(addEnvelopes(dir, root, [good, bad], now));
      expect(error.code).toBe(code);
      expect(await readState(dir)).toBe(0);
    }
  });

  it('takes only a trust root that names this log and its key', async () => {
    const { dir, root } = await setup();
    const envelope = signedStatement(notary, {
      signer: 'notary@example.org',
      subjects: [subject('ghcr.io/home-assistant/a')],
    });
    const otherKey = { ...root, log: { origin: testOrigin, key: testKey(testOrigin).public } };
    expect((await rejection(addEnvelopes(dir, otherKey, [envelope], now))).code).toBe(
      'ROOT_INVALID',
    );
    const otherOrigin = { ...root, log: { ...root.log, origin: 'other.example/log' } };
    expect((await rejection(addEnvelopes(dir, otherOrigin, [envelope], now))).code).toBe(
      'ROOT_INVALID',
    );
    const expired = { ...root, expires: '2025-01-01T00:00:00Z' };
    expect((await rejection(addEnvelopes(dir, expired, [envelope], now))).code).toBe(
      'ROOT_EXPIRED',
    );
  });
});
