import { VouchError } from './errors';
import { type DigestAlgorithm, merkleAlgorithm } from './statement-names';

/**
 * Hex digests as a user types them (`sign --digest`, `verify digest`, `authenticate --hash`,
 * image IDs for `allow` and `verify image`): one rule everywhere. `sha256:` may be left
 * out, hex may be in either case, and what comes back is lowercase, as statements and
 * Docker write digests. Statements themselves stay strict (statement.ts: lowercase only):
 * this is for what is typed, not for what is signed.
 */

const sha256Pattern = /^(?:sha256:)?([0-9a-f]{64})$/i;
const merklePattern = new RegExp(`^${merkleAlgorithm}:([0-9a-f]{64})$`, 'i');
/** Docker takes an image ID or a prefix of at least 12 hex digits (its short form). */
const imageIdPattern = /^(?:sha256:)?([0-9a-f]{12,64})$/i;

/** At most this much of a bad value is quoted back. */
const quoted = (text: string) => text.slice(0, 80);

/** `sha256:<64 hex>` or the bare hex → 64 lowercase hex; USAGE otherwise. */
export function parseSha256(text: string): string {
  const hex = sha256Pattern.exec(text)?.[1];
  if (hex === undefined) {
    throw new VouchError(
      'USAGE',
      `not a SHA-256 digest (sha256:<64 hex>, or the 64 hex alone): ${quoted(text)}`,
    );
  }
  return hex.toLowerCase();
}

export interface TypedDigest {
  readonly algorithm: DigestAlgorithm;
  /** 64 lowercase hex. */
  readonly hex: string;
}

/** A SHA-256 as parseSha256 reads it, or `merkle-sha256-1mib:<64 hex>`; USAGE otherwise. */
export function parseDigest(text: string): TypedDigest {
  const merkle = merklePattern.exec(text)?.[1];
  if (merkle !== undefined) return { algorithm: merkleAlgorithm, hex: merkle.toLowerCase() };
  const sha256 = sha256Pattern.exec(text)?.[1];
  if (sha256 !== undefined) return { algorithm: 'sha256', hex: sha256.toLowerCase() };
  throw new VouchError(
    'USAGE',
    `not a digest (sha256:<64 hex>, the 64 hex alone, or ${merkleAlgorithm}:<64 hex>): ${quoted(text)}`,
  );
}

export interface TypedImageId {
  /** What to ask Docker for: lowercase, `sha256:` as typed. */
  readonly ref: string;
  /** `sha256:<64 hex>` when the whole ID was typed, else undefined (a prefix). */
  readonly id: string | undefined;
}

/**
 * An image ID as typed: its 64 hex digits or a prefix of at least 12, `sha256:` optional,
 * either case. Undefined for anything else, which is an image name.
 */
export function parseImageId(text: string): TypedImageId | undefined {
  const hex = imageIdPattern.exec(text)?.[1]?.toLowerCase();
  if (hex === undefined) return undefined;
  return { ref: text.toLowerCase(), id: hex.length === 64 ? `sha256:${hex}` : undefined };
}
