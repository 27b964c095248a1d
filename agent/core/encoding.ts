import { VouchError } from './errors';

/**
 * Strict base64 decoding for attacker-controlled input: Buffer.from(…, 'base64') skips
 * characters it does not know, so the same bytes would have many spellings.
 */
const urlSafe = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;

/**
 * Standard base64 with padding: whole 4-character groups of the alphabet, the last ending
 * in at most two `=`. (The same as /^(?:[A-Za-z0-9+\/]{4})*(?:…{2}==|…{3}=)?$/, in one
 * character-class scan: payloads are long and this runs for every logged statement.)
 */
function isStandard(text: string): boolean {
  return text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);
}

/** Standard base64 (RFC 4648 §4) with padding. */
export function decodeBase64(text: string, what = 'base64'): Uint8Array {
  if (!isStandard(text)) throw new VouchError('BAD_DATA', `invalid ${what}`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Standard or URL-safe base64 (RFC 4648 §4, §5), padding optional for the URL-safe form. */
export function decodeAnyBase64(text: string, what = 'base64'): Uint8Array {
  if (isStandard(text)) return new Uint8Array(Buffer.from(text, 'base64'));
  if (urlSafe.test(text)) return new Uint8Array(Buffer.from(text, 'base64url'));
  throw new VouchError('BAD_DATA', `invalid ${what}`);
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
