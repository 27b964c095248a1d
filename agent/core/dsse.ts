import { z } from 'zod';
import { decodeAnyBase64, encodeBase64, toHex } from './encoding';
import { VouchError } from './errors';
import { describeIssues, parseJson } from './json';
import { type PrivateKey, type PublicKey, signBytes, verifyBytes } from './keys';

/**
 * DSSE v1 (github.com/secure-systems-lab/dsse): the JSON envelope (envelope.md) and the
 * signing protocol over PAE(payloadType, payload) (protocol.md). Signatures cover the
 * payload *bytes*, so whatever reads the payload afterwards reads exactly what was
 * verified; nothing is ever re-encoded.
 */

/** The largest payload we accept (decoded bytes). A statement is a few hundred bytes. */
export const maxPayloadBytes = 1024 * 1024;
/** The largest envelope we read: the payload in base64 (×4/3) plus the signatures. */
export const maxEnvelopeBytes = 2 * 1024 * 1024;
/** Bounds the verification work (signatures × candidate keys). */
const maxSignatures = 64;

export interface Signature {
  /** Unauthenticated hint (envelope.md: "unset MUST be treated the same as set-but-empty"). */
  readonly keyid: string;
  readonly sig: Uint8Array;
}

export interface Envelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly signatures: readonly Signature[];
}

/** An envelope whose signatures were checked, and the keys that made them. */
export interface VerifiedEnvelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly keys: readonly PublicKey[];
}

/**
 * protocol.md: PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, where
 * LEN is the *byte* length in ASCII decimal and type is UTF-8.
 */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.byteLength(payloadType, 'utf8');
  const head = `DSSEv1 ${type} `;
  const middle = ` ${payload.length} `;
  // One buffer, written in place: this runs once per statement a device syncs.
  const out = Buffer.allocUnsafe(head.length + type + middle.length + payload.length);
  let at = out.write(head, 0, 'latin1');
  at += out.write(payloadType, at, 'utf8');
  at += out.write(middle, at, 'latin1');
  out.set(payload, at);
  return out;
}

// envelope.md "Parsing rules": payload, payloadType, signatures and sig are required;
// keyid is optional; unknown fields are ignored (zod objects strip them).
const envelopeSchema = z.object({
  payloadType: z.string().min(1).max(256),
  payload: z.string(),
  signatures: z
    .array(z.object({ keyid: z.string().max(256).optional(), sig: z.string().max(1024) }))
    .max(maxSignatures),
});

export function parseEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > maxEnvelopeBytes) {
    throw new VouchError(
      'PAYLOAD_TOO_LARGE',
      `envelope of ${bytes.length} bytes is over the ${maxEnvelopeBytes}-byte cap`,
    );
  }
  const document = parseJson(bytes, 'ENVELOPE_INVALID', 'envelope');
  const result = envelopeSchema.safeParse(document);
  if (!result.success) {
    throw new VouchError(
      'ENVELOPE_INVALID',
      `not a DSSE envelope: ${describeIssues(result.error)}`,
      { cause: result.error },
    );
  }
  const { payloadType, payload, signatures } = result.data;
  // Check the size before decoding: base64 is 4 characters per 3 bytes.
  if (payload.length > Math.ceil(maxPayloadBytes / 3) * 4) {
    throw new VouchError('PAYLOAD_TOO_LARGE', `payload is over the ${maxPayloadBytes}-byte cap`);
  }
  const decodedPayload = decode(payload, 'payload');
  if (decodedPayload.length > maxPayloadBytes) {
    throw new VouchError('PAYLOAD_TOO_LARGE', `payload is over the ${maxPayloadBytes}-byte cap`);
  }
  const seen = new Set<string>();
  const decodedSignatures = signatures.map((signature, index) => {
    const sig = decode(signature.sig, `signatures[${index}].sig`);
    const hex = Buffer.from(sig).toString('hex');
    // The same signature twice is a malformed envelope (it would also be counted once).
    if (seen.has(hex)) {
      throw new VouchError('SIGNATURE_DUPLICATE', `signatures[${index}] repeats an earlier one`);
    }
    seen.add(hex);
    return { keyid: signature.keyid ?? '', sig };
  });
  return { payloadType, payload: decodedPayload, signatures: decodedSignatures };
}

export function serializeEnvelope(envelope: Envelope): string {
  return `${JSON.stringify({
    payloadType: envelope.payloadType,
    payload: encodeBase64(envelope.payload),
    signatures: envelope.signatures.map(({ keyid, sig }) => ({
      ...(keyid ? { keyid } : {}),
      sig: encodeBase64(sig),
    })),
  })}\n`;
}

export function signEnvelope(
  payloadType: string,
  payload: Uint8Array,
  key: PrivateKey,
  keyid = '',
): Envelope {
  return addSignature({ payloadType, payload, signatures: [] }, key, keyid);
}

/** Adds a signature by `key`; an envelope it already signed comes back unchanged. */
export function addSignature(envelope: Envelope, key: PrivateKey, keyid = ''): Envelope {
  const sig = signBytes(key, pae(envelope.payloadType, envelope.payload));
  // Ed25519 is deterministic (RFC 8032 §5.1.6): the same key gives the same signature.
  if (envelope.signatures.some((signature) => Buffer.from(signature.sig).equals(sig))) {
    return envelope;
  }
  return { ...envelope, signatures: [...envelope.signatures, { keyid, sig }] };
}

/**
 * The distinct keys among `keys` that signed the envelope. The keyid hints are ignored
 * (they are not signed): every signature is tried against every key. Keys are counted
 * by their raw bytes, so one key listed twice (say, under two names) or signing twice
 * can never make up a threshold on its own.
 */
export function signingKeys(envelope: Envelope, keys: readonly PublicKey[]): PublicKey[] {
  const message = pae(envelope.payloadType, envelope.payload);
  const found = new Map<string, PublicKey>();
  for (const { sig } of envelope.signatures) {
    const key = keys.find((candidate) => verifyBytes(candidate, message, sig));
    if (key) found.set(toHex(key.raw), key);
  }
  return [...found.values()];
}

/** The payload, once at least `threshold` distinct keys among `keys` signed it. */
export function verifyEnvelope(
  envelope: Envelope,
  keys: readonly PublicKey[],
  threshold = 1,
): VerifiedEnvelope {
  const signed = signingKeys(envelope, keys);
  if (signed.length < threshold) {
    throw new VouchError(
      'SIGNATURE_INVALID',
      `${signed.length} valid signature(s) by the given keys, ${threshold} required`,
    );
  }
  return { payloadType: envelope.payloadType, payload: envelope.payload, keys: signed };
}

/** Requires `expected` as the payloadType: DSSE leaves its check to the reader (protocol.md). */
export function requirePayloadType(envelope: { readonly payloadType: string }, expected: string) {
  if (envelope.payloadType !== expected) {
    throw new VouchError(
      'PAYLOAD_TYPE_UNKNOWN',
      `payloadType ${JSON.stringify(envelope.payloadType)}, expected ${expected}`,
    );
  }
}

function decode(text: string, what: string): Uint8Array {
  try {
    return decodeAnyBase64(text, what);
  } catch (error) {
    throw new VouchError('ENVELOPE_INVALID', `${what} is not valid base64`, { cause: error });
  }
}
