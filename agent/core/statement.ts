import { z } from 'zod';
import { VouchError } from './errors';
import { describeIssues, parseJson } from './json';
import { isValidKeyName } from './keys';
import { merkleAlgorithm, type StatementStatus, statementStatuses } from './statement-names';
import { formatUtcTime, parseUtcTime } from './time';

/**
 * The statement an author signs: an in-toto Statement v1
 * (github.com/in-toto/attestation/blob/main/spec/v1/statement.md) with our predicate
 * `urn:vouch:status:v1`, carried in a DSSE envelope. This is an interface for authors' CI
 * in any language, so the format is fixed and documented in docs/formats.md:
 *
 *   {"_type":"https://in-toto.io/Statement/v1",
 *    "subject":[{"name":"<name>","digest":{"sha256":"<64 hex>",
 *                                          "merkle-sha256-1mib":"<64 hex, optional>"}}, …],
 *    "predicateType":"urn:vouch:status:v1",
 *    "predicate":{"status":"trusted|untrusted|unsupported|revoked","signer":"<signer id>",
 *                 "issuedAt":"<RFC 3339 UTC>","reason":"<optional>"}}
 *
 * Unknown fields anywhere are ignored (in-toto: "consumers MUST ignore unrecognized
 * fields"), so statements made by other tools in this format are read like ours.
 */

/** DSSE payloadType of in-toto statements (in-toto attestation spec, envelope.md). */
export const statementPayloadType = 'application/vnd.in-toto+json';
export const statementType = 'https://in-toto.io/Statement/v1';
export const statusPredicateType = 'urn:vouch:status:v1';

export {
  type DigestAlgorithm,
  merkleAlgorithm,
  merkleLeafSize,
  type StatementStatus,
  statementStatuses,
} from './statement-names';

export interface Subject {
  readonly name: string;
  /** Lowercase hex SHA-256 of the subject's bytes (an image's config or manifest, a file). */
  readonly sha256: string;
  /** Lowercase hex `merkle-sha256-1mib` root of the same bytes, when the statement gives one. */
  readonly merkle?: string;
}

export interface Statement {
  readonly subjects: readonly Subject[];
  readonly status: StatementStatus;
  readonly signer: string;
  /** RFC 3339 UTC, as written in the statement. */
  readonly issuedAt: string;
  readonly reason?: string;
}

/** Names and reasons are for people and scope globs; caps keep a statement small. */
const maxNameLength = 1024;
const maxReasonLength = 4096;
const maxSubjects = 1024;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex');

const statementSchema = z.object({
  _type: z.literal(statementType),
  subject: z
    .array(
      z.object({
        name: z.string().min(1).max(maxNameLength),
        // in-toto DigestSet: algorithm → lowercase hex; other algorithms may sit beside
        // sha256 and are ignored (digest_set.md), except the one we read.
        digest: z.object({
          sha256: hex64,
          [merkleAlgorithm]: hex64.optional(),
        }),
      }),
    )
    .min(1)
    .max(maxSubjects),
  predicateType: z.literal(statusPredicateType),
  predicate: z.object({
    status: z.enum(statementStatuses),
    signer: z.string().refine(isValidKeyName, 'a signer ID is non-empty, without spaces or +'),
    issuedAt: z.string().max(64),
    reason: z.string().max(maxReasonLength).optional(),
  }),
});

/** Builds the payload bytes of a statement; `issuedAt` is written with whole seconds. */
export function encodeStatement(statement: {
  readonly subjects: readonly Subject[];
  readonly status: StatementStatus;
  readonly signer: string;
  readonly issuedAt: Date;
  readonly reason?: string | undefined;
}): Uint8Array {
  const payload = {
    _type: statementType,
    subject: statement.subjects.map(({ name, sha256, merkle }) => ({
      name,
      digest: { sha256, ...(merkle !== undefined ? { [merkleAlgorithm]: merkle } : {}) },
    })),
    predicateType: statusPredicateType,
    predicate: {
      status: statement.status,
      signer: statement.signer,
      issuedAt: formatUtcTime(statement.issuedAt.getTime()),
      ...(statement.reason ? { reason: statement.reason } : {}),
    },
  };
  const bytes = new Uint8Array(Buffer.from(JSON.stringify(payload), 'utf8'));
  // Check what we write with the reader others will use.
  parseStatement(bytes);
  return bytes;
}

/** Reads statement payload bytes: call it on the bytes a signature was verified over. */
export function parseStatement(payload: Uint8Array): Statement {
  return statementFromJson(parseJson(payload, 'STATEMENT_INVALID', 'statement'));
}

/** A statement from the JSON value of payload bytes a signature was verified over. */
export function statementFromJson(document: unknown): Statement {
  const result = statementSchema.safeParse(document);
  if (!result.success) {
    throw new VouchError(
      'STATEMENT_INVALID',
      `not a ${statusPredicateType} statement: ${describeIssues(result.error)}`,
      { cause: result.error },
    );
  }
  const { subject, predicate } = result.data;
  parseUtcTime(predicate.issuedAt, 'predicate.issuedAt', 'STATEMENT_INVALID');
  return {
    subjects: subject.map(({ name, digest }) => {
      const merkle = digest[merkleAlgorithm];
      return { name, sha256: digest.sha256, ...(merkle !== undefined ? { merkle } : {}) };
    }),
    status: predicate.status,
    signer: predicate.signer,
    issuedAt: predicate.issuedAt,
    ...(predicate.reason !== undefined ? { reason: predicate.reason } : {}),
  };
}
