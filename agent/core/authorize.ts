import { parseEnvelope, requirePayloadType, verifyEnvelope } from './dsse';
import { VouchError } from './errors';
import { parseJson } from './json';
import type { PublicKey } from './keys';
import { checkSigner, includesKey, type Root, requireUnexpired, rootSignerId } from './root';
import {
  parseStatement,
  type Statement,
  statementFromJson,
  statementPayloadType,
} from './statement';
import { parseUtcTime } from './time';

export interface AuthorizedStatement {
  readonly statement: Statement;
  /** The statement's signer ID; `root` for a revocation signed by a root key. */
  readonly signer: string;
  /** The keys of that signer which signed the envelope. */
  readonly keys: readonly PublicKey[];
  /** The statement's issuedAt in milliseconds, as the checks read it. */
  readonly issuedAtMs: number;
}

/**
 * What the log publisher checks before it appends an envelope: the trust root is current;
 * the envelope holds a statement; a key in the root signed it (verified before the payload
 * is read); the key belongs to the signer the statement names; that signer may speak for
 * every subject name (scopes) at the statement's time (validity window) and its validity
 * has not ended by `now` (so a retired key cannot log backdated statements). A statement
 * by the reserved signer `root` must be signed by a root key and may only revoke.
 */
export function authorizeEnvelope(
  root: Root,
  envelopeBytes: Uint8Array,
  now: Date,
): AuthorizedStatement {
  requireUnexpired(root, now);
  const authorized = authorizeLoggedEnvelope(root, envelopeBytes);
  const until = root.signers.find((signer) => signer.id === authorized.signer)?.validUntil;
  if (until !== undefined && parseUtcTime(until, 'validUntil') < now.getTime()) {
    throw new VouchError(
      'SIGNER_OUT_OF_WINDOW',
      `signer ${authorized.signer} was valid until ${until}; it can no longer add statements`,
    );
  }
  return authorized;
}

/**
 * What a device checks for every entry it syncs: the same as {@link authorizeEnvelope}
 * except the two checks against "now" (root expiry, checked once per sync, and a signer's
 * validity having ended since: a statement logged while its signer was valid stays valid).
 */
export function authorizeLoggedEnvelope(
  root: Root,
  envelopeBytes: Uint8Array,
): AuthorizedStatement {
  const envelope = parseEnvelope(envelopeBytes);
  requirePayloadType(envelope, statementPayloadType);
  const document = peekJson(envelope.payload);
  const verified = verifyEnvelope(envelope, candidateKeys(root, document));
  // The signatures cover the payload bytes, and `document` is what those bytes parse to:
  // parsing them again would give the same. Bytes that are not JSON get parseStatement's error.
  const statement =
    document === undefined ? parseStatement(verified.payload) : statementFromJson(document);

  if (statement.signer === rootSignerId) {
    const keys = verified.keys.filter((key) => includesKey(root.rootKeys, key));
    if (keys.length === 0) {
      throw new VouchError('SIGNER_MISMATCH', 'a statement by "root" must be signed by a root key');
    }
    if (statement.status !== 'revoked') {
      throw new VouchError(
        'SIGNER_OUT_OF_SCOPE',
        `root keys may only revoke, not mark ${statement.status}`,
      );
    }
    const issuedAtMs = parseUtcTime(statement.issuedAt, 'issuedAt');
    return { statement, signer: rootSignerId, keys, issuedAtMs };
  }

  const check = checkSigner(
    root,
    statement.signer,
    statement.subjects.map((subject) => subject.name),
    statement.issuedAt,
  );
  if (!check.ok) throw new VouchError(check.code, check.reason);
  const keys = verified.keys.filter((key) => includesKey(check.signer.keys, key));
  if (keys.length === 0) {
    throw new VouchError(
      'SIGNER_MISMATCH',
      `the statement names signer ${statement.signer}, but none of its keys signed it`,
    );
  }
  return { statement, signer: statement.signer, keys, issuedAtMs: check.issuedAtMs };
}

/** The payload's JSON value, or undefined when it is not JSON (not trusted before verification). */
function peekJson(payload: Uint8Array): unknown {
  try {
    return parseJson(payload, 'STATEMENT_INVALID', 'statement');
  } catch {
    return undefined;
  }
}

/**
 * Every key of the root, those of the signer the payload names first. Only the order
 * changes (the same keys verify, see signingKeys), but a valid statement then costs one
 * signature check instead of one per key listed before its signer's: most of a device's
 * sync time. The unverified payload is only peeked at here.
 */
function candidateKeys(root: Root, document: unknown): readonly PublicKey[] {
  const claimed = (document as { predicate?: { signer?: unknown } } | undefined)?.predicate?.signer;
  const orders = keyOrders(root);
  return (typeof claimed === 'string' && orders.bySigner.get(claimed)) || orders.all;
}

interface KeyOrders {
  /** For a signer ID (or `root`): its keys, then every other key of the root. */
  readonly bySigner: ReadonlyMap<string, readonly PublicKey[]>;
  readonly all: readonly PublicKey[];
}

/** The orders are computed once per root: a sync checks thousands of statements under one. */
const keyOrderCache = new WeakMap<Root, KeyOrders>();

function keyOrders(root: Root): KeyOrders {
  let orders = keyOrderCache.get(root);
  if (!orders) {
    const all = [...root.rootKeys, ...root.signers.flatMap((signer) => signer.keys)];
    const order = (first: readonly PublicKey[]) => [
      ...first,
      ...all.filter((key) => !first.includes(key)),
    ];
    const bySigner = new Map<string, readonly PublicKey[]>([[rootSignerId, order(root.rootKeys)]]);
    // The first signer of an ID, as checkSigner finds it.
    for (const signer of root.signers) {
      if (!bySigner.has(signer.id)) bySigner.set(signer.id, order(signer.keys));
    }
    orders = { bySigner, all };
    keyOrderCache.set(root, orders);
  }
  return orders;
}
