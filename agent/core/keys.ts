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

/**
 * Encodings of the 8 points of small order, sign bit cleared: the identity (y = 1, and
 * its non-canonical y = p + 1), y = -1, y = 0 (and y = p), and the two y values of the
 * order-8 points. node:crypto (OpenSSL) verifies cofactorless and accepts such a public
 * key; under the identity key, ([S]B, S) is a valid signature on every message. No
 * honest key is one of these, so we refuse them wherever a key is read (as libsodium's
 * verify does).
 */
const smallOrderEncodings = new Set([
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
]);

export function isSmallOrderKey(raw: Uint8Array): boolean {
  const masked = Buffer.from(raw);
  masked[31] = (masked[31] as number) & 0x7f;
  return smallOrderEncodings.has(masked.toString('hex'));
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
  if (isSmallOrderKey(raw)) {
    throw new VouchError(
      'BAD_KEY',
      'a small-order Ed25519 key: anyone can make signatures it accepts',
    );
  }
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

/**
 * A key as `<name>+<hex8 key ID>`, the start of its verifier string: enough to tell keys
 * apart in a message (a note signature line carries the same two).
 */
export function keyLabel(key: { readonly name: string; readonly keyId: Uint8Array }): string {
  return `${key.name}+${Buffer.from(key.keyId).toString('hex')}`;
}

export function parseVerifierString(text: string): PublicKey {
  // The base64 key may itself contain '+', so split at the first two only; a key name has none.
  const match = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(text.trim());
  const [, name, hexId, encoded] = match ?? [];
  if (!name || !hexId || !encoded || !/^[0-9a-f]{8}$/.test(hexId)) {
    throw new VouchError('BAD_KEY', 'not a verifier string <name>+<hex8 key ID>+<base64 key>');
  }
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(encoded, 'key');
  } catch (error) {
    throw new VouchError('BAD_KEY', `verifier string for ${name}: the key is not valid base64`, {
      cause: error,
    });
  }
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
 * With `type`, a verifier string must be of that type and a PEM key gets it (a witness
 * key is a cosignature key, 0x04); without, a PEM key is a plain Ed25519 note key.
 */
export function parsePublicKey(text: string, name?: string, type?: KeyType): PublicKey {
  if (text.length > maxKeyText) throw new VouchError('BAD_KEY', 'key text too large');
  if (!text.includes('-----BEGIN')) {
    const key = parseVerifierString(text);
    if (name !== undefined && key.name !== name) {
      throw new VouchError('BAD_KEY', `key is named ${key.name}, expected ${name}`);
    }
    if (type !== undefined && key.type !== type) {
      throw new VouchError(
        'BAD_KEY',
        `verifier string for ${key.name} has key type 0x0${key.type}, expected 0x0${type}`,
      );
    }
    return key;
  }
  // createPublicKey would also derive a public key from a private one: refuse that, so a
  // private key never ends up where only public keys belong (roots, CI configs).
  if (!text.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new VouchError(
      'BAD_KEY',
      text.includes('PRIVATE KEY-----')
        ? 'this is a private key; give the public key (SPKI PEM or verifier string)'
        : 'not a PEM public key (-----BEGIN PUBLIC KEY-----)',
    );
  }
  let object: KeyObject;
  try {
    object = createPublicKey({ key: text, format: 'pem' });
  } catch (error) {
    throw new VouchError('BAD_KEY', 'not a PEM public key', { cause: error });
  }
  requireEd25519(object);
  if (name === undefined) throw new VouchError('BAD_KEY', 'a PEM public key needs a name');
  return namePublicKey(name, rawPublicKey(object), type);
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
