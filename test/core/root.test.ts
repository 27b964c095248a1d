import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logCosigner } from '../../agent/core/cosignature';
import {
  addSignature,
  type Envelope,
  parseEnvelope,
  serializeEnvelope,
  signEnvelope,
} from '../../agent/core/dsse';
import { VouchError } from '../../agent/core/errors';
import { KeyType, verifierString } from '../../agent/core/keys';
import {
  checkSigner,
  encodeRoot,
  keyHolder,
  parseRoot,
  parseRootEnvelope,
  requireUnexpired,
  rootPayloadType,
  scopeMatches,
  unsignedRoot,
  verifyRoot,
  verifyRootChain,
} from '../../agent/core/root';
import { expectVouchError } from '../helpers/errors';
import { signRoot, type TestKey, testKey, testRoot } from '../helpers/trust';

const now = new Date('2025-06-01T00:00:00Z');
const keys = Object.fromEntries(
  ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((name) => [name, testKey(`root-${name}`)]),
) as Record<'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g', TestKey>;
const pubs = (...list: TestKey[]) => list.map((key) => key.public);

describe('trust root format', () => {
  const notary = testKey('notary@home-assistant.io');
  const witness = testKey('witness.example', KeyType.Cosignature);
  const root = testRoot({
    rootKeys: pubs(keys.a, keys.b),
    threshold: 2,
    witnesses: [witness.public],
    witnessQuorum: 1,
    signers: [
      {
        id: 'notary@home-assistant.io',
        keys: [notary.public],
        scopes: ['ghcr.io/home-assistant/*'],
        validFrom: '2025-01-01T00:00:00Z',
        validUntil: '2026-01-01T00:00:00Z',
      },
    ],
  });

  it('is a DSSE envelope of type application/vnd.vouch.root+json holding the root JSON', () => {
    const envelope = signRoot(root, [keys.a, keys.b]);
    const file = JSON.parse(serializeEnvelope(envelope));
    expect(file.payloadType).toBe(rootPayloadType);
    expect(file.signatures).toHaveLength(2);
    expect(JSON.parse(Buffer.from(file.payload, 'base64').toString())).toEqual({
      _type: 'urn:vouch:root:v1',
      version: 1,
      expires: '2099-01-01T00:00:00Z',
      rootKeys: [verifierString(keys.a.public), verifierString(keys.b.public)],
      threshold: 2,
      log: { origin: 'log.example.org/vouch', key: verifierString(root.log.key) },
      witnesses: [verifierString(witness.public)],
      witnessQuorum: 1,
      signers: [
        {
          id: 'notary@home-assistant.io',
          keys: [verifierString(notary.public)],
          scopes: ['ghcr.io/home-assistant/*'],
          validFrom: '2025-01-01T00:00:00Z',
          validUntil: '2026-01-01T00:00:00Z',
        },
      ],
    });
  });

  it('round-trips through its encoding', () => {
    const parsed = parseRoot(encodeRoot(root));
    expect(encodeRoot(parsed)).toEqual(encodeRoot(root));
    expect(parsed.witnesses[0]?.type).toBe(KeyType.Cosignature);
  });

  const payload = JSON.parse(Buffer.from(encodeRoot(root)).toString());
  const signer = payload.signers[0];
  it.each([
    ['an unknown field', { ...payload, revokedKeys: [] }],
    ['an unknown signer field', { ...payload, signers: [{ ...signer, admin: true }] }],
    ['another _type', { ...payload, _type: 'urn:vouch:root:v2' }],
    ['version 0', { ...payload, version: 0 }],
    ['a fractional version', { ...payload, version: 1.5 }],
    ['an unsafe version', { ...payload, version: 2 ** 53 }],
    ['threshold 0', { ...payload, threshold: 0 }],
    ['a threshold above the key count', { ...payload, threshold: 3 }],
    ['no root keys', { ...payload, rootKeys: [], threshold: 1 }],
    ['a repeated root key', { ...payload, rootKeys: [payload.rootKeys[0], payload.rootKeys[0]] }],
    [
      'a root key that is also a signer key',
      { ...payload, signers: [{ ...signer, keys: [payload.rootKeys[0]] }] },
    ],
    [
      'two signers with one ID',
      { ...payload, signers: [signer, { ...signer, keys: [verifierString(testKey('x').public)] }] },
    ],
    ['a signer called root', { ...payload, signers: [{ ...signer, id: 'root' }] }],
    ['a signer ID with a space', { ...payload, signers: [{ ...signer, id: 'a b' }] }],
    ['a signer without keys', { ...payload, signers: [{ ...signer, keys: [] }] }],
    ['a signer without scopes', { ...payload, signers: [{ ...signer, scopes: [] }] }],
    [
      'a window that ends before it starts',
      { ...payload, signers: [{ ...signer, validFrom: '2026-02-01T00:00:00Z' }] },
    ],
    ['a bad validUntil', { ...payload, signers: [{ ...signer, validUntil: 'tomorrow' }] }],
    ['a bad expires', { ...payload, expires: '2099-13-01T00:00:00Z' }],
    ['a quorum above the witness count', { ...payload, witnessQuorum: 2 }],
    ['witnesses with quorum 0', { ...payload, witnessQuorum: 0 }],
    [
      'a witness key of type 0x01',
      { ...payload, witnesses: [verifierString(testKey('w').public)] },
    ],
    ['a log key of type 0x04', { ...payload, log: { ...payload.log, key: payload.witnesses[0] } }],
    // The log cosigns its own checkpoints: as a witness it would make the quorum on its own.
    [
      'the log key as a witness',
      { ...payload, witnesses: [verifierString(logCosigner(root.log.key))] },
    ],
    ['a log origin with a space', { ...payload, log: { ...payload.log, origin: 'a b' } }],
    ['a malformed key', { ...payload, rootKeys: ['root-a+00000000+AAAA'], threshold: 1 }],
    ['no log', { ...payload, log: undefined }],
  ])('rejects a root with %s as ROOT_INVALID', (_what, document) => {
    expectVouchError(
      () => parseRoot(new Uint8Array(Buffer.from(JSON.stringify(document)))),
      'ROOT_INVALID',
    );
  });

  it('rejects garbage, truncated and non-root envelopes with typed errors', () => {
    const file = serializeEnvelope(signRoot(root, [keys.a, keys.b]));
    expectVouchError(
      () => parseRootEnvelope(new Uint8Array(Buffer.from(file.slice(0, -20)))),
      'ENVELOPE_INVALID',
    );
    expectVouchError(() => parseRoot(new Uint8Array(Buffer.from('{"_type":'))), 'ROOT_INVALID');
    const statementEnvelope = signEnvelope(
      'application/vnd.in-toto+json',
      encodeRoot(root),
      keys.a.private,
    );
    expectVouchError(
      () => parseRootEnvelope(new Uint8Array(Buffer.from(serializeEnvelope(statementEnvelope)))),
      'PAYLOAD_TYPE_UNKNOWN',
    );
    expectVouchError(() => verifyRoot(statementEnvelope), 'PAYLOAD_TYPE_UNKNOWN');
  });
});

describe('root rotation (TUF §5.3)', () => {
  // v1: a b c, threshold 2 → v2: b c d e, threshold 3 → v3: e f, threshold 1 → v4: f g, threshold 2
  const v1 = testRoot({
    version: 1,
    rootKeys: pubs(keys.a, keys.b, keys.c),
    threshold: 2,
    expires: '2025-02-01T00:00:00Z',
  });
  const v2 = testRoot({
    ...v1,
    version: 2,
    rootKeys: pubs(keys.b, keys.c, keys.d, keys.e),
    threshold: 3,
    expires: '2025-03-01T00:00:00Z',
  });
  const v3 = testRoot({
    ...v1,
    version: 3,
    rootKeys: pubs(keys.e, keys.f),
    threshold: 1,
    expires: '2026-01-01T00:00:00Z',
  });
  const v4 = testRoot({
    ...v1,
    version: 4,
    rootKeys: pubs(keys.f, keys.g),
    threshold: 2,
    expires: '2027-01-01T00:00:00Z',
  });
  const chain = [
    signRoot(v1, [keys.a, keys.c]),
    // 2 of v1's (b, c) and 3 of its own (b, c, d).
    signRoot(v2, [keys.b, keys.c, keys.d]),
    // 3 of v2's (c, d, e) and 1 of its own (e).
    signRoot(v3, [keys.c, keys.d, keys.e]),
    // 1 of v3's (f) and 2 of its own (f, g).
    signRoot(v4, [keys.f, keys.g]),
  ];

  it('walks a chain of three rotations with changing thresholds', () => {
    const newest = verifyRootChain(chain, now);
    expect(newest.version).toBe(4);
    expect(encodeRoot(newest)).toEqual(encodeRoot(v4));
    // Step by step, as a device that already trusts v2 would.
    const trusted2 = verifyRoot(chain[1] as Envelope, verifyRoot(chain[0] as Envelope));
    expect(verifyRootChain(chain.slice(2), now, trusted2).version).toBe(4);
  });

  it('checks expiry on the newest root only: expired intermediate roots still chain', () => {
    // v1 and v2 expired before `now`; v4 has not.
    expect(() => requireUnexpired(v1, now)).toThrow(VouchError);
    expect(verifyRootChain(chain, now).version).toBe(4);
  });

  it('rejects a successor without a threshold of the previous keys: ROOT_PREVIOUS_THRESHOLD', () => {
    // Only one of v1's keys (b); all of its own.
    const bad = signRoot(v2, [keys.b, keys.d, keys.e]);
    const error = expectVouchError(
      () => verifyRootChain([chain[0] as Envelope, bad], now),
      'ROOT_PREVIOUS_THRESHOLD',
    );
    expect(error.message).toBe("signed by 1 of the trusted root v1's keys, 2 required");
    // Signatures by keys outside both roots count for neither.
    const outsiders = signRoot(v3, [keys.e, keys.a, keys.g]);
    expectVouchError(
      () => verifyRoot(outsiders, verifyRoot(chain[1] as Envelope, v1)),
      'ROOT_PREVIOUS_THRESHOLD',
    );
  });

  it('rejects a successor without a threshold of its own keys: ROOT_THRESHOLD', () => {
    // Both of v1's (b, c) count for v2 too, but v2 wants 3 of its own.
    const bad = signRoot(v2, [keys.a, keys.b, keys.c]);
    const error = expectVouchError(
      () => verifyRootChain([chain[0] as Envelope, bad], now),
      'ROOT_THRESHOLD',
    );
    expect(error.message).toBe('root v2 is signed by 2 of its own root keys, 3 required');
    // The first root of a chain, too.
    expectVouchError(() => verifyRootChain([signRoot(v1, [keys.a])], now), 'ROOT_THRESHOLD');
    expectVouchError(() => verifyRootChain([unsignedRoot(v4)], now), 'ROOT_THRESHOLD');
  });

  it('rejects a version that does not go up: ROOT_ROLLBACK', () => {
    const trusted2 = verifyRoot(chain[1] as Envelope, v1);
    const sameVersion = signRoot({ ...v2, expires: '2030-01-01T00:00:00Z' }, [
      keys.b,
      keys.c,
      keys.d,
    ]);
    expectVouchError(() => verifyRoot(sameVersion, trusted2), 'ROOT_ROLLBACK');
    const older = signRoot({ ...v2, version: 1 }, [keys.b, keys.c, keys.d]);
    expectVouchError(() => verifyRoot(older, trusted2), 'ROOT_ROLLBACK');
  });

  it('rejects a version that skips ahead: ROOT_VERSION_SKIP', () => {
    // v3 content re-versioned as 3 directly over v1, signed by enough of both.
    const skip = signRoot({ ...v3, rootKeys: pubs(keys.a, keys.b), threshold: 2 }, [
      keys.a,
      keys.b,
    ]);
    expectVouchError(() => verifyRoot(skip, v1), 'ROOT_VERSION_SKIP');
  });

  it('rejects an expired newest root: ROOT_EXPIRED', () => {
    const error = expectVouchError(() => verifyRootChain(chain.slice(0, 2), now), 'ROOT_EXPIRED');
    expect(error.message).toBe('trust root v2 expired at 2025-03-01T00:00:00Z');
    expectVouchError(
      () => verifyRootChain(chain, new Date('2027-01-01T00:00:00Z')),
      'ROOT_EXPIRED',
    );
    expect(verifyRootChain(chain, new Date('2026-12-31T23:59:59Z')).version).toBe(4);
  });

  it('property: any mutation of a signed root is rejected with a typed error or verifies identically', () => {
    const trusted = verifyRoot(chain[0] as Envelope);
    const original = Buffer.from(serializeEnvelope(chain[1] as Envelope));
    const expected = encodeRoot(v2);
    const check = (mutated: Uint8Array) => {
      try {
        const root = verifyRootChain([parseRootEnvelope(mutated)], during, trusted);
        expect(encodeRoot(root)).toEqual(expected);
      } catch (error) {
        if (!(error instanceof VouchError)) throw error;
        expect(error.kind).toBe('data');
      }
    };
    const during = new Date('2025-02-15T00:00:00Z');
    fc.assert(
      fc.property(fc.nat(), fc.nat(255), fc.boolean(), (at, value, insert) => {
        const i = at % original.length;
        const mutated = insert
          ? Buffer.concat([original.subarray(0, i), Buffer.from([value]), original.subarray(i)])
          : Buffer.from(original).fill(value, i, i + 1);
        check(new Uint8Array(mutated));
      }),
      { numRuns: 300 },
    );
    // The payload JSON edited under the original signatures: never accepted.
    const document = JSON.parse(Buffer.from(encodeRoot(v2)).toString());
    const envelope = chain[1] as Envelope;
    fc.assert(
      fc.property(
        fc.constantFrom('version', 'expires', 'threshold', 'rootKeys', 'signers', 'witnessQuorum'),
        fc.jsonValue(),
        (field, value) => {
          const payload = new Uint8Array(
            Buffer.from(JSON.stringify({ ...document, [field]: value })),
          );
          const same = Buffer.from(payload).equals(Buffer.from(envelope.payload));
          try {
            verifyRoot({ ...envelope, payload }, trusted);
            expect(same).toBe(true);
          } catch (error) {
            if (!(error instanceof VouchError)) throw error;
            expect(['ROOT_PREVIOUS_THRESHOLD']).toContain(error.code);
          }
        },
      ),
      { numRuns: 200 },
    );
    // Adding a signature by anyone, or dropping one beyond the thresholds, changes nothing.
    const extra = addSignature(envelope, testKey('stranger').private);
    expect(
      encodeRoot(
        verifyRoot(parseEnvelope(new Uint8Array(Buffer.from(serializeEnvelope(extra)))), trusted),
      ),
    ).toEqual(expected);
  });
});

describe('signer scopes and windows', () => {
  it.each([
    ['ghcr.io/home-assistant/*', 'ghcr.io/home-assistant/amd64-hassio-supervisor:2025.1.0', true],
    ['ghcr.io/home-assistant/*', 'ghcr.io/home-assistant/amd64-hassio-supervisor', true],
    ['ghcr.io/home-assistant/*', 'ghcr.io/home-assistant/', true],
    ['ghcr.io/home-assistant/*', 'ghcr.io/home-assistant/addons/ssh', false],
    ['ghcr.io/home-assistant/*', 'ghcr.io/home-assistant', false],
    ['ghcr.io/home-assistant/*', 'ghcr.io/home-assistantx/a', false],
    ['ghcr.io/home-assistant/**', 'ghcr.io/home-assistant/addons/ssh', true],
    ['**', 'anything/at/all:1', true],
    ['*', 'a/b', false],
    ['haos_rpi?-64-*.img.xz', 'haos_rpi5-64-14.0.img.xz', true],
    ['haos_rpi?-64-*.img.xz', 'haos_rpi5-64-14.0.img.gz', false],
    ['a.b', 'axb', false],
    ['a+(b)[c]^$|\\', 'a+(b)[c]^$|\\', true],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
    // By code points: `?` is one character, even outside the BMP.
    ['ghcr.io/?', 'ghcr.io/\u{1F600}', true],
    ['ghcr.io/??', 'ghcr.io/\u{1F600}', false],
    ['\u{1F600}/*', '\u{1F600}/x', true],
  ])('%s covers %s: %s', (glob, name, expected) => {
    expect(scopeMatches(glob, name)).toBe(expected);
  });

  it('property: agrees with a regex translation of the glob', () => {
    const alphabet = fc.constantFrom('a', 'b', '/', '.', '*', '?');
    const glob = fc.array(alphabet, { maxLength: 10 }).map((chars) => chars.join(''));
    const name = fc
      .array(fc.constantFrom('a', 'b', '/', '.'), { maxLength: 12 })
      .map((chars) => chars.join(''));
    fc.assert(
      fc.property(glob, name, (g, n) => {
        const pattern = g
          .replace(/[.]/g, '\\.')
          .replace(/\*\*/g, '\u0000')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replaceAll('\u0000', '.*');
        expect(scopeMatches(g, n)).toBe(new RegExp(`^${pattern}$`, 's').test(n));
      }),
      { numRuns: 1000 },
    );
  });

  it('stays fast on a pathological glob and a long name', () => {
    const started = performance.now();
    expect(scopeMatches('*a*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(1024))).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('checks the signer, each name and the issuedAt time', () => {
    const notary = testKey('notary');
    const root = testRoot({
      rootKeys: pubs(keys.a),
      threshold: 1,
      signers: [
        {
          id: 'notary',
          keys: [notary.public],
          scopes: ['ghcr.io/home-assistant/*', 'files/**'],
          validFrom: '2025-01-01T00:00:00Z',
          validUntil: '2025-12-31T23:59:59Z',
        },
      ],
    });
    const names = ['ghcr.io/home-assistant/core', 'files/a/b'];
    expect(checkSigner(root, 'notary', names, '2025-06-01T00:00:00Z')).toMatchObject({ ok: true });
    expect(checkSigner(root, 'notary', names, '2025-01-01T00:00:00Z').ok).toBe(true);
    expect(checkSigner(root, 'notary', names, '2025-12-31T23:59:59Z').ok).toBe(true);
    expect(checkSigner(root, 'other', names, '2025-06-01T00:00:00Z')).toMatchObject({
      ok: false,
      code: 'SIGNER_UNKNOWN',
    });
    expect(
      checkSigner(root, 'notary', [...names, 'docker.io/evil/x'], '2025-06-01T00:00:00Z'),
    ).toMatchObject({
      ok: false,
      code: 'SIGNER_OUT_OF_SCOPE',
    });
    expect(checkSigner(root, 'notary', names, '2024-12-31T23:59:59Z')).toMatchObject({
      ok: false,
      code: 'SIGNER_OUT_OF_WINDOW',
    });
    expect(checkSigner(root, 'notary', names, '2026-01-01T00:00:00Z')).toMatchObject({
      ok: false,
      code: 'SIGNER_OUT_OF_WINDOW',
    });
  });
});

describe('keyHolder', () => {
  it('names the one party of the root that holds a key, or none', () => {
    const log = testKey('log.example.org/vouch');
    const witness = testKey('witness.example', KeyType.Cosignature);
    const signer = testKey('notary@example.org');
    const root = testRoot({
      rootKeys: [keys.a.public],
      threshold: 1,
      log: { origin: 'log.example.org/vouch', key: log.public },
      witnesses: [witness.public],
      witnessQuorum: 1,
      signers: [{ id: 'notary@example.org', keys: [signer.public], scopes: ['**'] }],
    });
    const cases: [TestKey, string | undefined][] = [
      [keys.a, 'root key root-a'],
      [signer, 'a key of signer notary@example.org'],
      [log, 'the log key'],
      [witness, 'witness key witness.example'],
      [keys.b, undefined],
    ];
    for (const [key, holder] of cases) expect(keyHolder(root, key.public.raw)).toBe(holder);
  });
});
