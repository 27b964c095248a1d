import { z } from 'zod';
import { type Envelope, parseEnvelope, requirePayloadType, signingKeys } from './dsse';
import { toHex } from './encoding';
import { VouchError } from './errors';
import { describeIssues, parseJson } from './json';
import {
  isValidKeyName,
  KeyType,
  type PublicKey,
  parseVerifierString,
  verifierString,
} from './keys';
import { parseUtcTime } from './time';

/**
 * The trust root: who may sign what, which log to follow, which witnesses to require.
 *
 * Format: a DSSE envelope (payloadType `application/vnd.vouch.root+json`) whose payload is
 * the root JSON. Why not TUF's "signed" object with canonical JSON: DSSE signs the payload
 * *bytes*, so no canonicalization is needed (a classic source of verifier disagreements),
 * adding a signature never touches what was signed, and we verify roots with the same
 * code as statements. PAE binds the payloadType, so a root signature can never be
 * replayed as a statement signature or the other way round.
 *
 * Rotation follows TUF (theupdateframework.github.io/specification, §5.3 "Update the root
 * role"): version N+1 is accepted only when signed by a threshold of N's root keys *and* a
 * threshold of its own; versions only go up by one; expiry is checked on the newest root
 * only (§5.3.10), so a device that was offline for a long time can still walk the chain.
 */

export const rootPayloadType = 'application/vnd.vouch.root+json';
export const rootType = 'urn:vouch:root:v1';
/** The signer ID of statements signed by a root key; root keys may only revoke. */
export const rootSignerId = 'root';

export interface Signer {
  readonly id: string;
  readonly keys: readonly PublicKey[];
  /** Globs over subject names: `*` within one `/`-separated segment, `**` across them. */
  readonly scopes: readonly string[];
  /** RFC 3339 UTC bounds on a statement's issuedAt, both inclusive. */
  readonly validFrom?: string;
  readonly validUntil?: string;
}

export interface Root {
  readonly version: number;
  /** RFC 3339 UTC. */
  readonly expires: string;
  readonly rootKeys: readonly PublicKey[];
  readonly threshold: number;
  /** The log: its checkpoint origin line and its note key (c2sp.org/tlog-checkpoint). */
  readonly log: { readonly origin: string; readonly key: PublicKey };
  /** Witness cosignature keys (c2sp.org/tlog-cosignature, type 0x04) and how many must cosign. */
  readonly witnesses: readonly PublicKey[];
  readonly witnessQuorum: number;
  readonly signers: readonly Signer[];
}

const maxRootKeys = 32;
const maxSigners = 1024;
const time = z.string().max(64);
const verifier = z.string().max(1024);
// Strict objects: a field this version does not know might restrict trust, so it must not
// be dropped silently; a change of meaning gets a new `_type`.
const rootSchema = z.strictObject({
  _type: z.literal(rootType),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  expires: time,
  rootKeys: z.array(verifier).min(1).max(maxRootKeys),
  threshold: z.number().int().min(1),
  log: z.strictObject({ origin: z.string().min(1).max(256), key: verifier }),
  witnesses: z.array(verifier).max(maxRootKeys),
  witnessQuorum: z.number().int().min(0),
  signers: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(256),
        keys: z.array(verifier).min(1).max(maxRootKeys),
        scopes: z.array(z.string().min(1).max(1024)).min(1).max(256),
        validFrom: time.optional(),
        validUntil: time.optional(),
      }),
    )
    .max(maxSigners),
});

/** The payload bytes of a root (validated: what we write, we can read back). */
export function encodeRoot(root: Root): Uint8Array {
  const document = {
    _type: rootType,
    version: root.version,
    expires: root.expires,
    rootKeys: root.rootKeys.map(verifierString),
    threshold: root.threshold,
    log: { origin: root.log.origin, key: verifierString(root.log.key) },
    witnesses: root.witnesses.map(verifierString),
    witnessQuorum: root.witnessQuorum,
    signers: root.signers.map((signer) => ({
      id: signer.id,
      keys: signer.keys.map(verifierString),
      scopes: signer.scopes,
      ...(signer.validFrom !== undefined ? { validFrom: signer.validFrom } : {}),
      ...(signer.validUntil !== undefined ? { validUntil: signer.validUntil } : {}),
    })),
  };
  const bytes = new Uint8Array(Buffer.from(JSON.stringify(document), 'utf8'));
  parseRoot(bytes);
  return bytes;
}

/** A root document as an unsigned envelope, ready for `addSignature`. */
export function unsignedRoot(root: Root): Envelope {
  return { payloadType: rootPayloadType, payload: encodeRoot(root), signatures: [] };
}

/** Parses root payload bytes: shape and consistency, not signatures. */
export function parseRoot(payload: Uint8Array): Root {
  const result = rootSchema.safeParse(parseJson(payload, 'ROOT_INVALID', 'trust root'));
  if (!result.success) {
    throw new VouchError('ROOT_INVALID', `trust root: ${describeIssues(result.error)}`, {
      cause: result.error,
    });
  }
  const data = result.data;
  const root: Root = {
    version: data.version,
    expires: data.expires,
    rootKeys: data.rootKeys.map((text, i) => rootKey(text, `rootKeys[${i}]`, KeyType.Ed25519)),
    threshold: data.threshold,
    log: { origin: data.log.origin, key: rootKey(data.log.key, 'log.key', KeyType.Ed25519) },
    witnesses: data.witnesses.map((text, i) =>
      rootKey(text, `witnesses[${i}]`, KeyType.Cosignature),
    ),
    witnessQuorum: data.witnessQuorum,
    signers: data.signers.map((signer, i) => ({
      id: signer.id,
      keys: signer.keys.map((text, j) =>
        rootKey(text, `signers[${i}].keys[${j}]`, KeyType.Ed25519),
      ),
      scopes: signer.scopes,
      ...(signer.validFrom !== undefined ? { validFrom: signer.validFrom } : {}),
      ...(signer.validUntil !== undefined ? { validUntil: signer.validUntil } : {}),
    })),
  };
  checkConsistency(root);
  return root;
}

/** A root file's envelope, checked to be a root envelope; nothing is verified yet. */
export function parseRootEnvelope(bytes: Uint8Array): Envelope {
  const envelope = parseEnvelope(bytes);
  requirePayloadType(envelope, rootPayloadType);
  return envelope;
}

/**
 * Verifies one root document: signed by a threshold of its own root keys and, when a
 * `trusted` root is given, by a threshold of the trusted root's keys and exactly one
 * version above it. Expiry is not checked here (see {@link verifyRootChain}).
 */
export function verifyRoot(envelope: Envelope, trusted?: Root): Root {
  requirePayloadType(envelope, rootPayloadType);
  if (trusted) {
    // §5.3.4: check the new root against the trusted keys before reading it.
    const previous = signingKeys(envelope, trusted.rootKeys).length;
    if (previous < trusted.threshold) {
      throw new VouchError(
        'ROOT_PREVIOUS_THRESHOLD',
        `signed by ${previous} of the trusted root v${trusted.version}'s keys, ${trusted.threshold} required`,
      );
    }
  }
  const root = parseRoot(envelope.payload);
  const own = signingKeys(envelope, root.rootKeys).length;
  if (own < root.threshold) {
    throw new VouchError(
      'ROOT_THRESHOLD',
      `root v${root.version} is signed by ${own} of its own root keys, ${root.threshold} required`,
    );
  }
  if (trusted) {
    // §5.3.5: the version goes up by exactly one; anything else is a rollback or a gap.
    if (root.version <= trusted.version) {
      throw new VouchError(
        'ROOT_ROLLBACK',
        `root v${root.version} is not newer than the trusted v${trusted.version}`,
      );
    }
    if (root.version !== trusted.version + 1) {
      throw new VouchError(
        'ROOT_VERSION_SKIP',
        `root v${root.version} skips versions after the trusted v${trusted.version}; apply each version in turn`,
      );
    }
  }
  return root;
}

/**
 * Walks root documents in version order from `trusted` (or, without one, from the first
 * document, which must be signed by its own threshold) and returns the newest, which must
 * not have expired at `now`.
 */
export function verifyRootChain(documents: readonly Envelope[], now: Date, trusted?: Root): Root {
  let current = trusted;
  for (const document of documents) current = verifyRoot(document, current);
  if (!current) throw new VouchError('ROOT_INVALID', 'no trust root given');
  requireUnexpired(current, now);
  return current;
}

/** §5.3.10: an expired root is not used, whatever signed it. */
export function requireUnexpired(root: Root, now: Date): void {
  if (parseUtcTime(root.expires, 'expires') <= now.getTime()) {
    throw new VouchError('ROOT_EXPIRED', `trust root v${root.version} expired at ${root.expires}`);
  }
}

/**
 * Whether a glob from a signer's scopes covers `name`: `*` matches within one
 * `/`-separated segment, `**` across segments, `?` one character other than `/`, anything
 * else itself. Matched by dynamic programming (no regex), so a crafted name costs at most
 * glob length × name length steps, never exponential backtracking.
 */
export function scopeMatches(glob: string, name: string): boolean {
  // By code points; a string without surrogates is indexed as it is (no copy).
  const chars = /[\ud800-\udfff]/.test(name) ? Array.from(name) : name;
  const pattern = /[\ud800-\udfff]/.test(glob) ? Array.from(glob) : glob;
  const n = chars.length;
  // matched[j]: the glob so far matches the first j characters of the name.
  let matched = new Uint8Array(n + 1);
  let next = new Uint8Array(n + 1);
  matched[0] = 1;
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    const anySegments = token === '*' && pattern[i + 1] === '*';
    if (anySegments) i++;
    next[0] = token === '*' ? (matched[0] as number) : 0;
    let any = next[0] as number;
    if (token === '*') {
      for (let j = 1; j <= n; j++) {
        next[j] = matched[j] || (next[j - 1] && (anySegments || chars[j - 1] !== '/')) ? 1 : 0;
        any |= next[j] as number;
      }
    } else {
      for (let j = 1; j <= n; j++) {
        const char = chars[j - 1];
        next[j] = matched[j - 1] && (token === '?' ? char !== '/' : char === token) ? 1 : 0;
        any |= next[j] as number;
      }
    }
    [matched, next] = [next, matched];
    if (!any) return false;
  }
  return matched[n] === 1;
}

export type SignerCheck =
  | { readonly ok: true; readonly signer: Signer; readonly issuedAtMs: number }
  | {
      readonly ok: false;
      readonly code: 'SIGNER_UNKNOWN' | 'SIGNER_OUT_OF_SCOPE' | 'SIGNER_OUT_OF_WINDOW';
      readonly reason: string;
    };

/**
 * Whether the root lets `signerId` make a statement about every one of `names` issued at
 * `issuedAt`. Shared by the publisher (before logging) and the device policy.
 */
export function checkSigner(
  root: Root,
  signerId: string,
  names: readonly string[],
  issuedAt: string,
): SignerCheck {
  const signer = root.signers.find((candidate) => candidate.id === signerId);
  if (!signer) {
    return {
      ok: false,
      code: 'SIGNER_UNKNOWN',
      reason: `signer ${signerId} is not in trust root v${root.version}`,
    };
  }
  const outside = names.find((name) => !signer.scopes.some((glob) => scopeMatches(glob, name)));
  if (outside !== undefined) {
    return {
      ok: false,
      code: 'SIGNER_OUT_OF_SCOPE',
      reason: `signer ${signerId} may not sign ${outside} (scopes: ${signer.scopes.join(', ')})`,
    };
  }
  const at = parseUtcTime(issuedAt, 'issuedAt');
  const from =
    signer.validFrom === undefined ? undefined : parseUtcTime(signer.validFrom, 'validFrom');
  const until =
    signer.validUntil === undefined ? undefined : parseUtcTime(signer.validUntil, 'validUntil');
  if ((from !== undefined && at < from) || (until !== undefined && at > until)) {
    return {
      ok: false,
      code: 'SIGNER_OUT_OF_WINDOW',
      reason: `signer ${signerId} is valid ${signer.validFrom ?? 'from any time'} to ${signer.validUntil ?? 'any time'}, statement issued at ${issuedAt}`,
    };
  }
  return { ok: true, signer, issuedAtMs: at };
}

/** Whether `key` (by its raw bytes) is one of `keys`. */
export function includesKey(keys: readonly PublicKey[], key: PublicKey): boolean {
  return keys.some(
    (candidate) => candidate === key || Buffer.compare(candidate.raw, key.raw) === 0,
  );
}

/**
 * Who holds the key with these raw bytes in `root`, in words for messages (`root key
 * root-1`, `a key of signer ID`, `the log key`, `witness key W`), or undefined when the
 * root does not list it. A key belongs to one party (checkConsistency), so there is one answer.
 */
export function keyHolder(root: Root, raw: Uint8Array): string | undefined {
  const rootKey = findKey(root.rootKeys, raw);
  if (rootKey) return `root key ${rootKey.name}`;
  const signer = root.signers.find((candidate) => findKey(candidate.keys, raw));
  if (signer) return `a key of signer ${signer.id}`;
  if (findKey([root.log.key], raw)) return 'the log key';
  const witness = findKey(root.witnesses, raw);
  return witness && `witness key ${witness.name}`;
}

/** The key among `keys` with these raw bytes. */
export function findKey(keys: readonly PublicKey[], raw: Uint8Array): PublicKey | undefined {
  return keys.find((key) => Buffer.compare(key.raw, raw) === 0);
}

function rootKey(text: string, path: string, type: KeyType): PublicKey {
  let key: PublicKey;
  try {
    key = parseVerifierString(text);
  } catch (error) {
    throw new VouchError('ROOT_INVALID', `trust root: ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (key.type !== type) {
    throw new VouchError(
      'ROOT_INVALID',
      `trust root: ${path}: expected a key of type 0x0${type}, got 0x0${key.type}`,
    );
  }
  return key;
}

/** Rules zod cannot see: thresholds within bounds, unique IDs and keys, sane windows. */
function checkConsistency(root: Root): void {
  const fail = (message: string): never => {
    throw new VouchError('ROOT_INVALID', `trust root: ${message}`);
  };
  parseUtcTime(root.expires, 'expires', 'ROOT_INVALID');
  if (root.threshold > root.rootKeys.length) {
    fail(`threshold ${root.threshold} is more than the ${root.rootKeys.length} root key(s)`);
  }
  if (root.witnessQuorum > root.witnesses.length) {
    fail(
      `witnessQuorum ${root.witnessQuorum} is more than the ${root.witnesses.length} witness(es)`,
    );
  }
  if (root.witnesses.length > 0 && root.witnessQuorum === 0) {
    fail('witnesses are listed but witnessQuorum is 0');
  }
  if (!isValidKeyName(root.log.origin)) fail('log.origin: no spaces or +');
  // A key belongs to one party: otherwise "who signed this" has two answers.
  const owners = new Map<string, string>();
  const claim = (keys: readonly PublicKey[], owner: string) => {
    for (const key of keys) {
      const previous = owners.get(toHex(key.raw));
      if (previous !== undefined) fail(`${owner} repeats a key of ${previous}`);
      owners.set(toHex(key.raw), owner);
    }
  };
  claim(root.rootKeys, 'rootKeys');
  const witnesses = new Set(root.witnesses.map((key) => toHex(key.raw)));
  if (witnesses.size !== root.witnesses.length) fail('witnesses repeat a key');
  // The log cosigns its own checkpoints with its key (cosignature.ts logCosigner): as a
  // witness it would witness itself.
  if (includesKey(root.witnesses, root.log.key)) fail('a witness has the log key');
  const ids = new Set<string>();
  for (const signer of root.signers) {
    const where = `signer ${signer.id}`;
    if (!isValidKeyName(signer.id)) fail(`${where}: a signer ID has no spaces or +`);
    if (signer.id === rootSignerId) fail(`"${rootSignerId}" is reserved for the root keys`);
    if (ids.has(signer.id)) fail(`${where} is listed twice`);
    ids.add(signer.id);
    claim(signer.keys, where);
    const from =
      signer.validFrom === undefined
        ? undefined
        : parseUtcTime(signer.validFrom, `${where}: validFrom`, 'ROOT_INVALID');
    const until =
      signer.validUntil === undefined
        ? undefined
        : parseUtcTime(signer.validUntil, `${where}: validUntil`, 'ROOT_INVALID');
    if (from !== undefined && until !== undefined && from > until) {
      fail(`${where}: validFrom is after validUntil`);
    }
  }
}
