/**
 * The names a statement's readers and writers choose from (statement.ts has the format),
 * apart from its zod schema: the CLI shows them in its help at every start, and builds
 * the schema only when a command reads or writes statements (docs/performance.md "Start-up").
 */

export const statementStatuses = ['trusted', 'untrusted', 'unsupported', 'revoked'] as const;
export type StatementStatus = (typeof statementStatuses)[number];

/**
 * vouch's chunked digest, an extra algorithm in the subject's in-toto DigestSet (in-toto
 * attestation spec/v1/digest_set.md: a DigestSet may hold several algorithms, and consumers
 * ignore the ones they do not know). Its value is the RFC 6962 §2.1 Merkle Tree Hash of the
 * content split into 1 MiB chunks (the last one shorter), each chunk hashed as an RFC 6962
 * leaf, SHA-256(0x00 ‖ chunk); no chunks (an empty file) give the empty-tree hash
 * SHA-256(""). Chunks hash independently, so one large file is hashed on every core.
 * The leaf size is part of the name: a recorded root is only ever recomputed with it.
 */
export const merkleAlgorithm = 'merkle-sha256-1mib';
export const merkleLeafSize = 2 ** 20;

/** The digest algorithms vouch looks subjects up by. */
export type DigestAlgorithm = 'sha256' | typeof merkleAlgorithm;
