import { createPublicKey } from 'node:crypto';
import * as noble from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addSignature,
  type Envelope,
  maxEnvelopeBytes,
  maxPayloadBytes,
  pae,
  parseEnvelope,
  requirePayloadType,
  serializeEnvelope,
  signEnvelope,
  signingKeys,
  verifyEnvelope,
} from '../../agent/core/dsse';
import { VouchError } from '../../agent/core/errors';
import { KeyType, namePublicKey, type PublicKey } from '../../agent/core/keys';
import { expectVouchError } from '../helpers/errors';
import { testKey } from '../helpers/trust';

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));
const json = (value: unknown) => bytes(JSON.stringify(value));
const type = 'application/vnd.in-toto+json';

describe('PAE (DSSE protocol.md)', () => {
  it('gives the known answer for the spec example', () => {
    expect(Buffer.from(pae('http://example.com/HelloWorld', bytes('hello world'))).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('counts bytes, not characters, for both the type and the body', () => {
    expect(Buffer.from(pae('tÿpe', bytes('héllo wörld'))).toString()).toBe(
      'DSSEv1 5 tÿpe 13 héllo wörld',
    );
    expect(Buffer.from(pae('', new Uint8Array()))).toEqual(Buffer.from('DSSEv1 0  0 '));
  });
});

describe('DSSE envelopes', () => {
  const alice = testKey('alice');
  const bob = testKey('bob');
  const carol = testKey('carol');
  const payload = bytes('{"hello": "world",   "order":  ["kept"]}');

  it('round-trips: what is verified is exactly the payload bytes that were signed', () => {
    const envelope = signEnvelope(type, payload, alice.private, 'hint');
    const parsed = parseEnvelope(bytes(serializeEnvelope(envelope)));
    expect(parsed.signatures[0]?.keyid).toBe('hint');
    const verified = verifyEnvelope(parsed, [alice.public]);
    expect(verified.payloadType).toBe(type);
    // Odd spacing survives: nothing is re-encoded between verifying and reading.
    expect(Buffer.from(verified.payload).toString()).toBe(
      '{"hello": "world",   "order":  ["kept"]}',
    );
    expect(verified.keys.map((key) => key.name)).toEqual(['alice']);
  });

  it('accepts standard and URL-safe base64, with or without URL-safe padding', () => {
    const envelope = signEnvelope(
      type,
      bytes('??>>~~ payload with + and / in base64'),
      alice.private,
    );
    const sig = envelope.signatures[0]?.sig as Uint8Array;
    const std = Buffer.from(envelope.payload).toString('base64');
    expect(std).toMatch(/[+/]/);
    for (const encode of [
      (b: Uint8Array) => Buffer.from(b).toString('base64'),
      (b: Uint8Array) => Buffer.from(b).toString('base64url'),
      (b: Uint8Array) =>
        Buffer.from(b).toString('base64').replaceAll('+', '-').replaceAll('/', '_'),
    ]) {
      const parsed = parseEnvelope(
        json({
          payloadType: type,
          payload: encode(envelope.payload),
          signatures: [{ sig: encode(sig) }],
        }),
      );
      expect(verifyEnvelope(parsed, [alice.public]).payload).toEqual(envelope.payload);
    }
  });

  it('authenticates the payloadType: a signature does not carry over to another type', () => {
    const envelope = signEnvelope(type, payload, alice.private);
    const retyped: Envelope = { ...envelope, payloadType: 'application/vnd.vouch.root+json' };
    expectVouchError(() => verifyEnvelope(retyped, [alice.public]), 'SIGNATURE_INVALID');
    expectVouchError(() => requirePayloadType(envelope, 'text/plain'), 'PAYLOAD_TYPE_UNKNOWN');
  });

  it('ignores keyid hints: a wrong or missing keyid verifies the same', () => {
    const envelope = signEnvelope(type, payload, alice.private, 'not-alice');
    const plain = {
      ...envelope,
      signatures: [{ keyid: '', sig: envelope.signatures[0]?.sig as Uint8Array }],
    };
    expect(verifyEnvelope(envelope, [bob.public, alice.public]).keys).toHaveLength(1);
    expect(verifyEnvelope(plain, [bob.public, alice.public]).keys).toHaveLength(1);
    expect(serializeEnvelope(plain)).not.toContain('keyid');
  });

  it('counts distinct keys toward a threshold, never one key twice', () => {
    let envelope = signEnvelope(type, payload, alice.private);
    envelope = addSignature(envelope, bob.private);
    // Signing again with a key that already signed changes nothing (Ed25519 is deterministic).
    expect(addSignature(envelope, bob.private)).toBe(envelope);
    const aliceAgain = namePublicKey('alice-under-another-name', alice.public.raw);
    expect(
      signingKeys(envelope, [alice.public, aliceAgain, bob.public, carol.public]),
    ).toHaveLength(2);
    expect(verifyEnvelope(envelope, [alice.public, bob.public, carol.public], 2).keys).toHaveLength(
      2,
    );
    const error = expectVouchError(
      () => verifyEnvelope(envelope, [alice.public, aliceAgain, carol.public], 2),
      'SIGNATURE_INVALID',
    );
    expect(error.message).toBe('1 valid signature(s) by the given keys, 2 required');
    expectVouchError(() => verifyEnvelope(envelope, [carol.public]), 'SIGNATURE_INVALID');
    expectVouchError(
      () => verifyEnvelope({ ...envelope, signatures: [] }, [alice.public]),
      'SIGNATURE_INVALID',
    );
  });

  it('counts a key once even when it made two different valid signatures', () => {
    // Only a small-order key has many valid signatures per message. namePublicKey refuses
    // those; this one is built by hand to test the counting on its own.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), identity]);
    const weak: PublicKey = {
      name: 'weak',
      type: KeyType.Ed25519,
      raw: identity,
      keyId: new Uint8Array(4),
      object: createPublicKey({ key: der, format: 'der', type: 'spki' }),
    };
    // ([S]B, S) verifies under the identity key for every message.
    const forged = [7, 9].map((s) => ({
      keyid: '',
      sig: new Uint8Array(
        Buffer.concat([
          noble.Point.BASE.multiply(BigInt(s)).toBytes(),
          Buffer.from([s]),
          Buffer.alloc(31),
        ]),
      ),
    }));
    const envelope: Envelope = { payloadType: type, payload, signatures: forged };
    expect(signingKeys(envelope, [weak])).toHaveLength(1);
    expectVouchError(() => verifyEnvelope(envelope, [weak], 2), 'SIGNATURE_INVALID');
  });

  it('rejects an envelope that repeats a signature, in any base64 spelling', () => {
    const envelope = signEnvelope(type, payload, alice.private);
    const sig = envelope.signatures[0]?.sig as Uint8Array;
    const document = (sigs: string[]) =>
      json({
        payloadType: type,
        payload: Buffer.from(payload).toString('base64'),
        signatures: sigs.map((s, i) => ({ keyid: `k${i}`, sig: s })),
      });
    const std = Buffer.from(sig).toString('base64');
    const url = Buffer.from(sig).toString('base64url');
    expectVouchError(() => parseEnvelope(document([std, std])), 'SIGNATURE_DUPLICATE');
    expectVouchError(() => parseEnvelope(document([std, url])), 'SIGNATURE_DUPLICATE');
    expect(parseEnvelope(document([std])).signatures).toHaveLength(1);
  });

  it('caps the payload at 1 MiB and the envelope at 2 MiB', () => {
    expect(maxPayloadBytes).toBe(1024 * 1024);
    const atCap = serializeEnvelope(
      signEnvelope(type, new Uint8Array(maxPayloadBytes), alice.private),
    );
    expect(parseEnvelope(bytes(atCap)).payload).toHaveLength(maxPayloadBytes);
    const over = serializeEnvelope(
      signEnvelope(type, new Uint8Array(maxPayloadBytes + 1), alice.private),
    );
    expectVouchError(() => parseEnvelope(bytes(over)), 'PAYLOAD_TOO_LARGE');
    // Far over: refused before decoding.
    const huge = json({ payloadType: type, payload: 'A'.repeat(1_500_000), signatures: [] });
    expectVouchError(() => parseEnvelope(huge), 'PAYLOAD_TOO_LARGE');
    expectVouchError(
      () => parseEnvelope(new Uint8Array(maxEnvelopeBytes + 1)),
      'PAYLOAD_TOO_LARGE',
    );
  });

  const valid = {
    payloadType: type,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [],
  };
  it.each([
    ['garbage', bytes('garbage')],
    ['an empty file', bytes('')],
    ['truncated JSON', bytes(JSON.stringify(valid).slice(0, 30))],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])],
    ['a JSON array', json([valid])],
    ['null', json(null)],
    ['no payload', json({ ...valid, payload: undefined })],
    ['no payloadType', json({ ...valid, payloadType: undefined })],
    ['an empty payloadType', json({ ...valid, payloadType: '' })],
    ['no signatures', json({ ...valid, signatures: undefined })],
    ['signatures not a list', json({ ...valid, signatures: {} })],
    ['a signature without sig', json({ ...valid, signatures: [{ keyid: 'x' }] })],
    ['a numeric sig', json({ ...valid, signatures: [{ sig: 5 }] })],
    ['payload not base64', json({ ...valid, payload: 'not base64!' })],
    ['payload with whitespace', json({ ...valid, payload: 'aGVs bG8=' })],
    ['a sig not base64', json({ ...valid, signatures: [{ sig: '***' }] })],
    [
      '65 signatures',
      json({
        ...valid,
        signatures: Array.from({ length: 65 }, (_, i) => ({
          sig: Buffer.from([i]).toString('base64'),
        })),
      }),
    ],
    ['deeply nested JSON', bytes(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)],
  ])('rejects %s with ENVELOPE_INVALID', (_what, input) => {
    expectVouchError(() => parseEnvelope(input), 'ENVELOPE_INVALID');
  });

  it('ignores unknown fields (envelope.md: consumers MUST ignore them)', () => {
    const envelope = signEnvelope(type, payload, alice.private);
    const document = JSON.parse(serializeEnvelope(envelope));
    document.extra = { anything: true };
    document.signatures[0].note = 'hello';
    expect(verifyEnvelope(parseEnvelope(json(document)), [alice.public]).payload).toEqual(payload);
  });

  it('property: any mutation of a signed envelope is rejected with a typed error or verifies identically', () => {
    const envelope = signEnvelope(type, payload, alice.private, 'alice');
    const original = bytes(serializeEnvelope(addSignature(envelope, bob.private)));
    const keys = [alice.public, bob.public];
    const check = (mutated: Uint8Array) => {
      try {
        const verified = verifyEnvelope(parseEnvelope(mutated), keys, 2);
        expect(verified.payloadType).toBe(type);
        expect(verified.payload).toEqual(payload);
      } catch (error) {
        if (!(error instanceof VouchError)) throw error;
        expect(error.kind).toBe('data');
      }
    };
    const byteEdit = fc.oneof(
      fc.record({ kind: fc.constant('flip'), at: fc.nat(), bit: fc.nat(7) }),
      fc.record({ kind: fc.constant('set'), at: fc.nat(), value: fc.nat(255) }),
      fc.record({ kind: fc.constant('insert'), at: fc.nat(), value: fc.nat(255) }),
      fc.record({
        kind: fc.constant('delete'),
        at: fc.nat(),
        length: fc.integer({ min: 1, max: 40 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(byteEdit, { minLength: 1, maxLength: 4 }), (edits) => {
        let mutated = Buffer.from(original);
        for (const edit of edits) {
          const at = edit.at % mutated.length;
          if (edit.kind === 'flip') mutated[at] = (mutated[at] as number) ^ (1 << edit.bit);
          else if (edit.kind === 'set') mutated[at] = edit.value;
          else if (edit.kind === 'insert')
            mutated = Buffer.concat([
              mutated.subarray(0, at),
              Buffer.from([edit.value]),
              mutated.subarray(at),
            ]);
          else
            mutated = Buffer.concat([mutated.subarray(0, at), mutated.subarray(at + edit.length)]);
        }
        check(new Uint8Array(mutated));
      }),
      { numRuns: 300 },
    );
    // Field-level edits: unsigned fields (keyid, extra fields, order) verify identically.
    const document = JSON.parse(Buffer.from(original).toString());
    const fieldEdit = fc.oneof(
      fc.record({ field: fc.constant('keyid'), index: fc.nat(1), value: fc.string() }),
      fc.record({ field: fc.constant('payloadType'), value: fc.string() }),
      fc.record({ field: fc.constant('payload'), value: fc.base64String() }),
      fc.record({ field: fc.constant('sig'), index: fc.nat(1), value: fc.base64String() }),
      fc.record({ field: fc.constant('extra'), value: fc.jsonValue() }),
      fc.record({ field: fc.constant('reverse') }),
    );
    fc.assert(
      fc.property(fieldEdit, (edit) => {
        const copy = structuredClone(document);
        if (edit.field === 'keyid') copy.signatures[edit.index].keyid = edit.value;
        else if (edit.field === 'sig') copy.signatures[edit.index].sig = edit.value;
        else if (edit.field === 'payloadType') copy.payloadType = edit.value;
        else if (edit.field === 'payload') copy.payload = edit.value;
        else if (edit.field === 'extra') copy.extra = edit.value;
        else copy.signatures.reverse();
        check(json(copy));
      }),
      { numRuns: 300 },
    );
  });
});
