import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { decodeBase64 } from './encoding';
import { VouchError } from './errors';

/**
 * Ed25519 keys (RFC 8032) through node:crypto (OpenSSL), and their textual names: C2SP
 * signed-note verifier strings `<name>+<hex8 key ID>+<base64(type ‖ public key)>`
 * (https://c2sp.org/signed-note#verifier-keys).
 */

/** Signature types of C2SP signed-note keys. */
export const KeyType = {
  /** Plain Ed25519 note signature (c2sp.org/signed-note). */
  Ed25519: 0x01,
  /** Timestamped Ed25519 witness cosignature (c2sp.org/tlog-cosignature, cosignature/v1). */
  Cosignature: 0x04,
} as const;
export type KeyType = (typeof KeyType)[keyof typeof KeyType];

export interface PublicKey {
  readonly name: string;
  readonly type: KeyType;
  /** The 32-byte Ed25519 public key. */
  readonly raw: Uint8Array;
  /** First 4 bytes of SHA-256(name ‖ 0x0A ‖ type ‖ raw). */
  readonly keyId: Uint8Array;
  readonly object: KeyObject;
}

export interface PrivateKey {
  readonly object: KeyObject;
  /** The matching public key, unnamed until {@link namePublicKey}. */
  readonly raw: Uint8Array;
}

const ed25519SpkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');
/** The largest key text we parse: a PEM key is ~120 bytes, a verifier string < 1 KiB. */
const maxKeyText = 16 * 1024;

/** C2SP signed-note: key names are non-empty, without spaces, '+' or Unicode spaces. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name) && !/\p{C}/u.test(name);
}

export function keyIdOf(name: string, type: KeyType, raw: Uint8Array): Uint8Array {
  const hash = createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, type]))
    .update(raw)
    .digest();
  return new Uint8Array(hash.subarray(0, 4));
}

export function namePublicKey(
  name: string,
  raw: Uint8Array,
  type: KeyType = KeyType.Ed25519,
): PublicKey {
  if (!isValidKeyName(name)) {
    throw new VouchError('BAD_KEY', `invalid key name ${JSON.stringify(name)}: no spaces or '+'`);
  }
  if (raw.length !== 32) throw new VouchError('BAD_KEY', 'an Ed25519 public key is 32 bytes');
  const object = createPublicKey({
    key: Buffer.concat([ed25519SpkiPrefix, raw]),
    format: 'der',
    type: 'spki',
  });
  return { name, type, raw: new Uint8Array(raw), keyId: keyIdOf(name, type, raw), object };
}

export function verifierString(key: PublicKey): string {
  const encoded = Buffer.concat([Buffer.from([key.type]), key.raw]).toString('base64');
  return `${key.name}+${Buffer.from(key.keyId).toString('hex')}+${encoded}`;
}

export function parseVerifierString(text: string): PublicKey {
  const parts = text.trim().split('+');
  const [name, hexId, encoded] = parts;
  if (parts.length !== 3 || !name || !hexId || !encoded || !/^[0-9a-f]{8}$/.test(hexId)) {
    throw new VouchError('BAD_KEY', 'not a verifier string <name>+<hex8 key ID>+<base64 key>');
  }
  const bytes = decodeBase64(encoded);
  const type = bytes[0];
  if (bytes.length !== 33 || (type !== KeyType.Ed25519 && type !== KeyType.Cosignature)) {
    throw new VouchError(
      'BAD_KEY',
      `verifier string for ${name}: not an Ed25519 key (type 0x01 or 0x04)`,
    );
  }
  const key = namePublicKey(name, bytes.subarray(1), type);
  if (Buffer.from(key.keyId).toString('hex') !== hexId) {
    throw new VouchError('BAD_KEY', `verifier string for ${name}: key ID does not match the key`);
  }
  return key;
}

/**
 * A public key given as an SPKI PEM or as a verifier string. A PEM carries no name, so
 * the caller supplies one (a signer ID, a log origin); a verifier string names itself.
 */
export function parsePublicKey(text: string, name?: string): PublicKey {
  if (text.length > maxKeyText) throw new VouchError('BAD_KEY', 'key text too large');
  if (!text.includes('-----BEGIN')) {
    const key = parseVerifierString(text);
    if (name !== undefined && key.name !== name) {
      throw new VouchError('BAD_KEY', `key is named ${key.name}, expected ${name}`);
    }
    return key;
  }
  let object: KeyObject;
  try {
    object = createPublicKey({ key: text, format: 'pem' });
  } catch (error) {
    throw new VouchError('BAD_KEY', 'not a PEM public key', { cause: error });
  }
  requireEd25519(object);
  if (name === undefined) throw new VouchError('BAD_KEY', 'a PEM public key needs a name');
  return namePublicKey(name, rawPublicKey(object));
}

/** A PKCS#8 PEM Ed25519 private key, as written by `vouch keygen` or `openssl genpkey`. */
export function parsePrivateKey(pem: string): PrivateKey {
  if (pem.length > maxKeyText) throw new VouchError('BAD_KEY', 'key text too large');
  let object: KeyObject;
  try {
    object = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new VouchError('BAD_KEY', 'not a PEM private key', { cause: error });
  }
  requireEd25519(object);
  return { object, raw: rawPublicKey(createPublicKey(object)) };
}

export function generateKey(): { privatePem: string; publicPem: string; key: PrivateKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    key: { object: privateKey, raw: rawPublicKey(publicKey) },
  };
}

export function signBytes(key: PrivateKey, message: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, key.object));
}

/** RFC 8032 verification; `false` for a bad signature, like the noble libraries. */
export function verifyBytes(key: PublicKey, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  return nodeVerify(null, message, key.object, signature);
}

function requireEd25519(object: KeyObject): void {
  if (object.asymmetricKeyType !== 'ed25519') {
    throw new VouchError(
      'BAD_KEY',
      `expected an Ed25519 key, got ${object.asymmetricKeyType?.toUpperCase() ?? 'an unknown key type'}`,
    );
  }
}

function rawPublicKey(object: KeyObject): Uint8Array {
  const der = object.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(ed25519SpkiPrefix.length));
}
