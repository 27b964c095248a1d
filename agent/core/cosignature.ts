import { VouchError } from './errors';
import {
  isValidKeyName,
  KeyType,
  keyIdOf,
  type PrivateKey,
  type PublicKey,
  signBytes,
  verifyBytes,
} from './keys';
import {
  type Note,
  type NoteSigner,
  type NoteVerifier,
  signNote,
  verifyNoteSignatures,
} from './note';

/**
 * C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), Ed25519 `cosignature/v1`:
 * a witness's timestamped signature over a checkpoint, key type 0x04.
 */

export interface Cosignature {
  /** The witness's key name. */
  readonly name: string;
  /** POSIX seconds at which the witness signed. */
  readonly timestamp: number;
}

const encoder = new TextEncoder();
/** timestamped_signature: u64 timestamp ‖ 64-byte Ed25519 signature. */
const signatureSize = 8 + 64;

/** §Ed25519 signed message: "cosignature/v1", "time <timestamp>", then the checkpoint text. */
export function cosignedMessage(text: Uint8Array, timestamp: number): Uint8Array {
  const header = encoder.encode(`cosignature/v1\ntime ${timestamp}\n`);
  const message = new Uint8Array(header.length + text.length);
  message.set(header);
  message.set(text, header.length);
  return message;
}

function timestampOf(signature: Uint8Array): number {
  const view = new DataView(signature.buffer, signature.byteOffset, signature.byteLength);
  // §Format: the timestamp MUST NOT exceed 2^63 − 1; we also need it to fit a safe integer.
  const timestamp = view.getBigUint64(0);
  return timestamp <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(timestamp) : -1;
}

export function cosignatureVerifier(key: PublicKey): NoteVerifier {
  if (key.type !== KeyType.Cosignature) {
    throw new VouchError('BAD_KEY', `${key.name} is not a witness key (type 0x04)`);
  }
  return {
    name: key.name,
    keyId: key.keyId,
    verify: (text, signature) => {
      if (signature.length !== signatureSize) return false;
      const timestamp = timestampOf(signature);
      if (timestamp < 0) return false;
      return verifyBytes(key, cosignedMessage(text, timestamp), signature.subarray(8));
    },
  };
}

export function cosignatureSigner(key: PrivateKey, name: string, timestamp: number): NoteSigner {
  if (!isValidKeyName(name)) throw new VouchError('BAD_KEY', `invalid witness name ${name}`);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new VouchError('BAD_DATA', `invalid cosignature time ${timestamp}`);
  }
  return {
    name,
    keyId: keyIdOf(name, KeyType.Cosignature, key.raw),
    sign: (text) => {
      const signature = new Uint8Array(signatureSize);
      new DataView(signature.buffer).setBigUint64(0, BigInt(timestamp));
      signature.set(signBytes(key, cosignedMessage(text, timestamp)), 8);
      return signature;
    },
  };
}

/** Adds a witness cosignature to a checkpoint note. */
export function cosignNote(note: Note, key: PrivateKey, name: string, timestamp: number): Note {
  return signNote(note, [cosignatureSigner(key, name, timestamp)]);
}

/**
 * The witnesses' cosignatures on a checkpoint note, one per witness, when at least
 * `quorum` of them verify. Unknown signatures are ignored; a failing one by a listed
 * witness rejects the note (c2sp.org/signed-note §Signatures).
 */
export function verifyCosignatures(
  note: Note,
  witnesses: readonly PublicKey[],
  quorum: number,
): Cosignature[] {
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > witnesses.length) {
    throw new VouchError(
      'WITNESS_QUORUM',
      `a quorum of ${quorum} cannot be met by ${witnesses.length} witnesses`,
    );
  }
  const verified = verifyNoteSignatures(note, witnesses.map(cosignatureVerifier));
  if (verified.length < quorum) {
    throw new VouchError(
      'WITNESS_QUORUM',
      `${verified.length} of ${quorum} required witness cosignatures`,
    );
  }
  return verified.map(({ signature }) => ({
    name: signature.name,
    timestamp: timestampOf(signature.signature),
  }));
}
