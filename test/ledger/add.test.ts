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

  it('says which signer an envelope names, whether the root lists it, and whose key signed', async () => {
    const { dir, root } = await setup();
    const stranger = testKey('stranger');
    const about = [subject('ghcr.io/home-assistant/a')];
    const notaryKey = `notary@example.org+${Buffer.from(notary.public.keyId).toString('hex')}`;
    const rootKeyName = `root-1+${Buffer.from(rootKey.public.keyId).toString('hex')}`;
    const addSigner = (id: string) =>
      `add the signer to the trust root (vouch root add-signer ROOT --id ${id} --key PUBLIC-KEY, then sign the root again)`;
    const cases: [string, Uint8Array, string, string][] = [
      [
        'a listed signer, a key the root does not list',
        signedStatement(stranger, { signer: 'notary@example.org', subjects: about }),
        'SIGNATURE_INVALID',
        'names signer notary@example.org, which trust root v1 lists, but no key of trust root v1 signed it ' +
          `(a key the root does not list, or the envelope changed after signing): sign it with a key of notary@example.org (${notaryKey}), ` +
          'or list the key for notary@example.org in the trust root',
      ],
      [
        'a listed signer, a root key',
        signedStatement(rootKey, { signer: 'notary@example.org', subjects: about }),
        'SIGNER_MISMATCH',
        'names signer notary@example.org, which trust root v1 lists, but is signed by root key root-1: ' +
          `sign it with a key of notary@example.org (${notaryKey})`,
      ],
      [
        'a signer missing from the root, a key the root does not list',
        signedStatement(stranger, { signer: 'stranger', subjects: about }),
        'SIGNATURE_INVALID',
        `names signer stranger, which trust root v1 does not list (it lists notary@example.org); no key of trust root v1 signed it: ${addSigner('stranger')}`,
      ],
      [
        "a signer missing from the root, another signer's key",
        signedStatement(notary, { signer: 'nobody', subjects: about }),
        'SIGNER_UNKNOWN',
        'names signer nobody, which trust root v1 does not list (it lists notary@example.org); ' +
          `it is signed by a key of signer notary@example.org: ${addSigner('nobody')}, or sign as notary@example.org (--signer notary@example.org)`,
      ],
      [
        "a revocation by root, a signer's key",
        signedStatement(notary, { signer: 'root', subjects: about, status: 'revoked' }),
        'SIGNER_MISMATCH',
        `names signer root, which trust root v1 lists, but is signed by a key of signer notary@example.org: sign it with a root key (${rootKeyName})`,
      ],
    ];
    for (const [what, envelope, code, message] of cases) {
      const error = await rejection(addEnvelopes(dir, root, [envelope], now));
      expect([error.code, error.message], what).toEqual([code, `envelope 1: ${message}`]);
    }
    // Every refused envelope, by the names given; nothing appended.
    const good = signedStatement(notary, { signer: 'notary@example.org', subjects: about });
    const [first, , , fourth] = cases;
    const error = await rejection(
      addEnvelopes(dir, root, [first?.[1], good, fourth?.[1]] as Uint8Array[], now, [
        'a.json',
        'b.json',
        'c.json',
      ]),
    );
    expect(error.code).toBe('SIGNATURE_INVALID');
    expect(error.message).toBe(
      `2 of 3 envelopes refused, nothing appended: a.json: ${first?.[3]}; c.json: ${fourth?.[3]}`,
    );
    expect(await readState(dir)).toBe(0);
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
    // Said once, not once per envelope.
    const error = await rejection(addEnvelopes(dir, expired, [envelope, envelope], now));
    expect([error.code, error.message]).toEqual([
      'ROOT_EXPIRED',
      'trust root v1 expired at 2025-01-01T00:00:00Z',
    ]);
  });
});
