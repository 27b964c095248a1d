import { VouchError } from './errors';

/**
 * Strict base64 decoding for attacker-controlled input: Buffer.from(…, 'base64') skips
 * characters it does not know, so the same bytes would have many spellings. Only the
 * canonical spelling is accepted: the decoded bytes must encode back to the very text
 * (which also rejects stray characters and non-zero padding bits). Native both ways: this
 * runs for every logged statement, where a regex scan cost more than the decoding.
 */
function decodeCanonical(text: string, alphabet: 'base64' | 'base64url'): Buffer | undefined {
  const bytes = Buffer.from(text, alphabet);
  const canonical = bytes.toString(alphabet);
  if (text === canonical) return bytes;
  // URL-safe base64 is written without padding; padding is allowed when it is right.
  if (
    alphabet === 'base64url' &&
    text === canonical.padEnd(Math.ceil(canonical.length / 4) * 4, '=')
  ) {
    return bytes;
  }
  return undefined;
}

/** Standard base64 (RFC 4648 §4) with padding. */
export function decodeBase64(text: string, what = 'base64'): Uint8Array {
  const bytes = decodeCanonical(text, 'base64');
  if (!bytes) throw new VouchError('BAD_DATA', `invalid ${what}`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Standard or URL-safe base64 (RFC 4648 §4, §5), padding optional for the URL-safe form. */
export function decodeAnyBase64(text: string, what = 'base64'): Uint8Array {
  const bytes = decodeCanonical(text, 'base64') ?? decodeCanonical(text, 'base64url');
  if (!bytes) throw new VouchError('BAD_DATA', `invalid ${what}`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
