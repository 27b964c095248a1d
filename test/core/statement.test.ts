import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signEnvelope, verifyEnvelope } from '../../agent/core/dsse';
import { VouchError } from '../../agent/core/errors';
import {
  encodeStatement,
  merkleAlgorithm,
  parseStatement,
  statementPayloadType,
  statusPredicateType,
} from '../../agent/core/statement';
import { expectVouchError } from '../helpers/errors';
import { testKey } from '../helpers/trust';

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));
const json = (value: unknown) => bytes(JSON.stringify(value));
const digest = 'a'.repeat(64);

describe('in-toto Statement v1 with the urn:vouch:status:v1 predicate', () => {
  it('writes exactly the documented format', () => {
    const payload = encodeStatement({
      subjects: [
        { name: 'ghcr.io/home-assistant/amd64-hassio-supervisor:2025.1.0', sha256: digest },
        { name: 'ghcr.io/home-assistant/amd64-hassio-supervisor', sha256: 'b'.repeat(64) },
      ],
      status: 'revoked',
      signer: 'notary@home-assistant.io',
      issuedAt: new Date('2025-01-31T12:00:00.789Z'),
      reason: 'CVE-2025-0001',
    });
    expect(Buffer.from(payload).toString()).toBe(
      '{"_type":"https://in-toto.io/Statement/v1","subject":[' +
        `{"name":"ghcr.io/home-assistant/amd64-hassio-supervisor:2025.1.0","digest":{"sha256":"${digest}"}},` +
        `{"name":"ghcr.io/home-assistant/amd64-hassio-supervisor","digest":{"sha256":"${'b'.repeat(64)}"}}],` +
        '"predicateType":"urn:vouch:status:v1","predicate":{"status":"revoked",' +
        '"signer":"notary@home-assistant.io","issuedAt":"2025-01-31T12:00:00Z","reason":"CVE-2025-0001"}}',
    );
    expect(statementPayloadType).toBe('application/vnd.in-toto+json');
    expect(statusPredicateType).toBe('urn:vouch:status:v1');
  });

  it('leaves out an empty reason', () => {
    const payload = encodeStatement({
      subjects: [{ name: 'f', sha256: digest }],
      status: 'trusted',
      signer: 's',
      issuedAt: new Date(0),
    });
    expect(parseStatement(payload)).toEqual({
      subjects: [{ name: 'f', sha256: digest }],
      status: 'trusted',
      signer: 's',
      issuedAt: '1970-01-01T00:00:00Z',
    });
  });

  it('reads a statement made by another tool: other key order, spacing, extra fields and digests', () => {
    const foreign = `{
      "predicate": {"reason": "deprecated", "issuedAt": "2025-03-01T08:30:00.123456Z",
                    "signer": "ci@example.org", "status": "unsupported", "buildId": 42},
      "predicateType": "urn:vouch:status:v1",
      "subject": [{"digest": {"sha512": "ff", "sha256": "${digest}"}, "name": "app.tar", "annotations": {}}],
      "_type": "https://in-toto.io/Statement/v1",
      "comment": "made by a shell script"
    }`;
    expect(parseStatement(bytes(foreign))).toEqual({
      subjects: [{ name: 'app.tar', sha256: digest }],
      status: 'unsupported',
      signer: 'ci@example.org',
      issuedAt: '2025-03-01T08:30:00.123456Z',
      reason: 'deprecated',
    });
  });

  it('writes and reads the chunked digest beside sha256 (merkle-sha256-1mib)', () => {
    const merkle = 'c'.repeat(64);
    const payload = encodeStatement({
      subjects: [
        { name: 'haos.raucb', sha256: digest, merkle },
        { name: 'f', sha256: digest },
      ],
      status: 'trusted',
      signer: 's',
      issuedAt: new Date(0),
    });
    expect(Buffer.from(payload).toString()).toContain(
      `"subject":[{"name":"haos.raucb","digest":{"sha256":"${digest}","merkle-sha256-1mib":"${merkle}"}},` +
        `{"name":"f","digest":{"sha256":"${digest}"}}]`,
    );
    expect(merkleAlgorithm).toBe('merkle-sha256-1mib');
    expect(parseStatement(payload).subjects).toEqual([
      { name: 'haos.raucb', sha256: digest, merkle },
      { name: 'f', sha256: digest },
    ]);
  });

  const good = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'f', digest: { sha256: digest } }],
    predicateType: 'urn:vouch:status:v1',
    predicate: { status: 'trusted', signer: 's', issuedAt: '2025-01-01T00:00:00Z' },
  };
  const predicate = (change: object) => ({ ...good, predicate: { ...good.predicate, ...change } });
  it.each([
    ['garbage', bytes('{not json')],
    ['invalid UTF-8', new Uint8Array([0xc3, 0x28])],
    ['another _type', json({ ...good, _type: 'https://in-toto.io/Statement/v0.1' })],
    ['another predicateType', json({ ...good, predicateType: 'https://slsa.dev/provenance/v1' })],
    ['no subjects', json({ ...good, subject: [] })],
    [
      'a subject without sha256',
      json({ ...good, subject: [{ name: 'f', digest: { sha512: digest } }] }),
    ],
    [
      'an uppercase digest',
      json({ ...good, subject: [{ name: 'f', digest: { sha256: digest.toUpperCase() } }] }),
    ],
    ['a short digest', json({ ...good, subject: [{ name: 'f', digest: { sha256: 'abc' } }] })],
    [
      'an uppercase chunked digest',
      json({
        ...good,
        subject: [{ name: 'f', digest: { sha256: digest, [merkleAlgorithm]: 'C'.repeat(64) } }],
      }),
    ],
    [
      'a chunked digest without sha256',
      json({ ...good, subject: [{ name: 'f', digest: { [merkleAlgorithm]: digest } }] }),
    ],
    [
      'a chunked digest that is not a string',
      json({ ...good, subject: [{ name: 'f', digest: { sha256: digest, [merkleAlgorithm]: 1 } }] }),
    ],
    ['an empty name', json({ ...good, subject: [{ name: '', digest: { sha256: digest } }] })],
    ['an unknown status', json(predicate({ status: 'maybe' }))],
    ['a signer with a space', json(predicate({ signer: 'a b' }))],
    ['no issuedAt', json(predicate({ issuedAt: undefined }))],
    ['a local time', json(predicate({ issuedAt: '2025-01-01T00:00:00+01:00' }))],
    ['an impossible date', json(predicate({ issuedAt: '2025-02-30T00:00:00Z' }))],
    ['a date only', json(predicate({ issuedAt: '2025-01-01' }))],
    ['a numeric reason', json(predicate({ reason: 5 }))],
  ])('rejects %s with STATEMENT_INVALID', (_what, payload) => {
    expectVouchError(() => parseStatement(payload), 'STATEMENT_INVALID');
  });

  const mutations = fc.tuple(fc.nat(), fc.string({ maxLength: 3 }), fc.nat(3));
  const mutate = (text: string, [at, insert, removed]: [number, string, number]) => {
    const i = at % text.length;
    return text.slice(0, i) + insert + text.slice(i + removed);
  };

  it('property: a mutated statement under the original signature is rejected, or is the original', () => {
    const key = testKey('s');
    const original = JSON.stringify(good);
    const { sig } = signEnvelope(statementPayloadType, bytes(original), key.private)
      .signatures[0] as {
      sig: Uint8Array;
    };
    fc.assert(
      fc.property(mutations, (mutation) => {
        const mutated = mutate(original, mutation);
        const envelope = {
          payloadType: statementPayloadType,
          payload: bytes(mutated),
          signatures: [{ keyid: '', sig }],
        };
        try {
          expect(parseStatement(verifyEnvelope(envelope, [key.public]).payload)).toEqual(
            parseStatement(bytes(original)),
          );
          expect(mutated).toBe(original);
        } catch (error) {
          if (!(error instanceof VouchError)) throw error;
          expect(error.code).toBe('SIGNATURE_INVALID');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: the parser turns any input into a well-formed statement or STATEMENT_INVALID', () => {
    const original = JSON.stringify(good);
    const inputs = fc.oneof(
      mutations.map((mutation) => bytes(mutate(original, mutation))),
      fc.jsonValue().map((value) => json(value)),
      fc.uint8Array({ maxLength: 64 }),
    );
    fc.assert(
      fc.property(inputs, (input) => {
        try {
          const statement = parseStatement(input);
          expect(statement.subjects.every((subject) => /^[0-9a-f]{64}$/.test(subject.sha256))).toBe(
            true,
          );
          expect(
            statement.subjects.every(
              (subject) => subject.merkle === undefined || /^[0-9a-f]{64}$/.test(subject.merkle),
            ),
          ).toBe(true);
          expect(['trusted', 'untrusted', 'unsupported', 'revoked']).toContain(statement.status);
          expect(statement.issuedAt).toMatch(/Z$/);
        } catch (error) {
          if (!(error instanceof VouchError)) throw error;
          expect(error.code).toBe('STATEMENT_INVALID');
        }
      }),
      { numRuns: 500 },
    );
  });
});
