import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authorizeLoggedEnvelope } from '../../agent/core/authorize';
import {
  maxEnvelopeBytes,
  parseEnvelope,
  serializeEnvelope,
  signEnvelope,
  verifyEnvelope,
} from '../../agent/core/dsse';
import type { ErrorCode } from '../../agent/core/errors';
import {
  encodeRoot,
  parseRootEnvelope,
  rootPayloadType,
  verifyRoot,
  verifyRootChain,
} from '../../agent/core/root';
import { encodeStatement, parseStatement, statementPayloadType } from '../../agent/core/statement';
import { expectVouchError } from '../helpers/errors';
import { signedStatement, signRoot, testKey, testRoot } from '../helpers/trust';
import { fuzz, jsonMutants, mutatedBytes, parses, rootCodes } from './fuzz';

/**
 * DSSE envelopes, the statements and roots they carry: mutants of valid documents made with
 * the real signing code, re-signed after the mutation where the point is to reach the
 * payload's parser behind the signature check.
 */

const rootKey = testKey('root-1');
const nextRootKey = testKey('root-2');
const signer = testKey('notary@example.org');
const root = testRoot({
  rootKeys: [rootKey.public],
  threshold: 1,
  signers: [{ id: 'notary@example.org', keys: [signer.public], scopes: ['ghcr.io/example/**'] }],
});
const subjects = [
  { name: 'ghcr.io/example/app:1', sha256: 'a'.repeat(64), merkle: 'b'.repeat(64) },
  { name: 'ghcr.io/example/tool:2', sha256: 'c'.repeat(64) },
];
const statementBytes = signedStatement(signer, {
  signer: 'notary@example.org',
  subjects,
  reason: 'reviewed',
});
const statementJson = JSON.parse(
  Buffer.from(
    encodeStatement({
      signer: 'notary@example.org',
      subjects,
      status: 'trusted',
      issuedAt: new Date('2025-06-01T00:00:00Z'),
      reason: 'reviewed',
    }),
  ).toString(),
);
const envelopeJson = JSON.parse(Buffer.from(statementBytes).toString());

/** What a device may refuse a log entry with (authorize.ts, dsse.ts, statement.ts, root.ts). */
const entryCodes: ErrorCode[] = [
  'ENVELOPE_INVALID',
  'PAYLOAD_TOO_LARGE',
  'SIGNATURE_DUPLICATE',
  'PAYLOAD_TYPE_UNKNOWN',
  'SIGNATURE_INVALID',
  'STATEMENT_INVALID',
  'SIGNER_UNKNOWN',
  'SIGNER_MISMATCH',
  'SIGNER_OUT_OF_SCOPE',
  'SIGNER_OUT_OF_WINDOW',
];

/** A log entry as the device reads it: nothing but an authorized statement or a typed error. */
function checkEntry(bytes: Uint8Array): void {
  const authorized = parses(() => authorizeLoggedEnvelope(root, bytes), entryCodes);
  if (authorized === undefined) return;
  expect(authorized.signer).toBe('notary@example.org');
  for (const subject of authorized.statement.subjects) {
    expect(subject.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(subject.name.startsWith('ghcr.io/example/')).toBe(true);
  }
}

const resign = (payload: Uint8Array) =>
  new Uint8Array(
    Buffer.from(serializeEnvelope(signEnvelope(statementPayloadType, payload, signer.private))),
  );

describe('fuzz: DSSE envelopes and statements (a device reading log entries)', () => {
  it('takes a valid entry', () => {
    expect(authorizeLoggedEnvelope(root, statementBytes).statement.subjects).toHaveLength(2);
  });

  it('refuses byte mutants of a signed envelope with a typed error, or reads the same statement', () => {
    fuzz(mutatedBytes(statementBytes), checkEntry);
  });

  it('refuses structural mutants of the envelope JSON (types, fields, nesting) with a typed error', () => {
    fuzz(jsonMutants(envelopeJson), checkEntry);
  });

  it('reaches the statement parser: mutated statements, signed again by the signer', () => {
    fuzz(jsonMutants(statementJson).map(resign), checkEntry);
  });

  it('parses any payload bytes into a statement or STATEMENT_INVALID', () => {
    fuzz(
      fc.oneof(jsonMutants(statementJson), fc.uint8Array({ maxLength: 200 })),
      (payload) => void parses(() => parseStatement(payload), ['STATEMENT_INVALID']),
    );
  });

  it('takes an envelope at the 2 MiB cap, refuses one past it and a payload past 1 MiB, by size', () => {
    const padding = (n: number) => ' '.repeat(n);
    const atCap = Buffer.from(
      `${padding(maxEnvelopeBytes - statementBytes.length)}${Buffer.from(statementBytes)}`,
    );
    expect(atCap.length).toBe(maxEnvelopeBytes);
    expect(authorizeLoggedEnvelope(root, atCap).signer).toBe('notary@example.org');
    expectVouchError(
      () => parseEnvelope(Buffer.concat([atCap, Buffer.from(' ')])),
      'PAYLOAD_TOO_LARGE',
    );
    const bigPayload = Buffer.from(
      serializeEnvelope({
        payloadType: statementPayloadType,
        payload: new Uint8Array(1024 * 1024 + 1),
        signatures: [],
      }),
    );
    expectVouchError(() => parseEnvelope(bigPayload), 'PAYLOAD_TOO_LARGE');
  });
});

const rootEnvelope = signRoot(root, [rootKey]);
const rootJson = JSON.parse(Buffer.from(encodeRoot(root)).toString());
const rootV2Json = { ...rootJson, version: 2, rootKeys: [...rootJson.rootKeys] };

const now = new Date('2026-01-01T00:00:00Z');

/** A root payload signed by `keys` as an envelope file's bytes. */
function signedRootFile(payload: Uint8Array, keys = [rootKey, nextRootKey]): Uint8Array {
  let envelope = signEnvelope(rootPayloadType, payload, rootKey.private);
  for (const key of keys.slice(1)) {
    envelope = {
      ...envelope,
      signatures: [
        ...envelope.signatures,
        ...signEnvelope(rootPayloadType, payload, key.private).signatures,
      ],
    };
  }
  return new Uint8Array(Buffer.from(serializeEnvelope(envelope)));
}

describe('fuzz: trust roots', () => {
  const rootFile = new Uint8Array(Buffer.from(serializeEnvelope(rootEnvelope)));

  it('refuses byte mutants of a root file with a typed error, or verifies the same root', () => {
    fuzz(mutatedBytes(rootFile), (bytes) => {
      const verified = parses(() => verifyRootChain([parseRootEnvelope(bytes)], now), rootCodes);
      if (verified !== undefined) expect(verified.rootKeys[0]?.raw).toEqual(rootKey.public.raw);
    });
  });

  it('reaches every root check: mutated roots, signed by their keys, as first root and as v2', () => {
    fuzz(fc.oneof(jsonMutants(rootJson), jsonMutants(rootV2Json)), (payload) => {
      const envelope = parses(() => parseEnvelope(signedRootFile(payload)), rootCodes);
      if (envelope === undefined) return;
      parses(() => verifyRoot(envelope), rootCodes);
      parses(() => verifyRootChain([envelope], now, root), rootCodes);
    });
  });

  it('verifies the signatures of any envelope by any keys without throwing but SIGNATURE_INVALID', () => {
    fuzz(mutatedBytes(rootFile), (bytes) => {
      const envelope = parses(() => parseEnvelope(bytes), rootCodes);
      if (envelope === undefined) return;
      parses(
        () => verifyEnvelope(envelope, [rootKey.public, signer.public], 2),
        ['SIGNATURE_INVALID'],
      );
    });
  });
});
