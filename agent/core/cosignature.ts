import { VouchError } from './errors';
import {
  isValidKeyName,
  KeyType,
  keyIdOf,
  namePublicKey,
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
/**
 * 9999-12-31T23:59:59Z, the last second RFC 3339 can write (four-digit years). §Format: the
 * timestamp MUST NOT exceed 2^63 − 1 and verifiers MAY reject times in the future; a later
 * time is a broken clock (milliseconds written as seconds, say), and believing it would
 * push a device's clock floor past every root's expiry for good.
 */
export const maxTimestamp = 253_402_300_799;

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
  const timestamp = view.getBigUint64(0);
  return timestamp <= BigInt(maxTimestamp) ? Number(timestamp) : -1;
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
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > maxTimestamp) {
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

/**
 * Adds a cosignature to a checkpoint note. One cosignature per cosigner: a new one
 * replaces the cosigner's earlier line (same name and key ID), whose time it supersedes.
 */
export function cosignNote(note: Note, key: PrivateKey, name: string, timestamp: number): Note {
  const signer = cosignatureSigner(key, name, timestamp);
  const others = note.signatures.filter(
    (line) => line.name !== name || Buffer.compare(line.keyId, signer.keyId) !== 0,
  );
  return signNote({ ...note, signatures: others }, [signer]);
}

/**
 * The log's own timestamped cosignature: `vouch log publish` cosigns every checkpoint it
 * writes with the log key as a cosignature/v1 cosigner named after the origin, so every
 * checkpoint carries a signed time, witnesses or not, and a device measures freshness
 * from it: an old checkpoint stays old however it arrives (mirror, replay, snapshot).
 *
 * Why the log key and not a key of its own (which the root would have to name):
 * - c2sp.org/signed-note §Signatures allows "reusing the same cryptographic key and name
 *   for different signature types without ambiguity ... if domain separation can be
 *   ensured": the key ID is over type 0x04, not 0x01, so the two lines are told apart.
 * - Domain separation holds: a cosignature signs "cosignature/v1\ntime <T>\n" followed by
 *   the checkpoint text (c2sp.org/tlog-cosignature §Ed25519 signed message), while the log
 *   key's 0x01 signatures cover checkpoint texts only, whose second line is a decimal tree
 *   size (c2sp.org/tlog-checkpoint §Note text), never "time <T>". Neither can pass for
 *   the other.
 * - tlog-checkpoint §Signatures lets a log sign its checkpoints with a cosignature, and
 *   the cosignature/v1 statement ("as of the specified time, the consistent tree head with
 *   the largest size the cosigner has observed") is what a log knows of its own tree.
 * - The Ed25519 message does not commit to the cosigner's name, so distinct cosigners MUST
 *   use distinct keys (tlog-cosignature §Ed25519 signed message): the log is no witness of
 *   itself, a root never lists the log key among its witnesses (root.ts), and this
 *   cosignature never counts toward the witness quorum.
 */
export function logCosigner(logKey: PublicKey): PublicKey {
  return namePublicKey(logKey.name, logKey.raw, KeyType.Cosignature);
}

/**
 * The witnesses' cosignatures on a checkpoint note, one per witness, when at least
 * `quorum` of them verify. Unknown signatures are ignored; a failing one by a listed
 * witness rejects the note (c2sp.org/signed-note §Signatures). Of several lines by one
 * witness the newest time counts: an older line put first (by a mirror, say) cannot date
 * the checkpoint back.
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
  const newest = new Map<NoteVerifier, Cosignature>();
  for (const { verifier, signature } of verifyNoteSignatures(
    note,
    witnesses.map(cosignatureVerifier),
  )) {
    const timestamp = timestampOf(signature.signature);
    if ((newest.get(verifier)?.timestamp ?? -1) < timestamp) {
      newest.set(verifier, { name: signature.name, timestamp });
    }
  }
  if (newest.size < quorum) {
    throw new VouchError(
      'WITNESS_QUORUM',
      `${newest.size} of ${quorum} required witness cosignatures`,
    );
  }
  return [...newest.values()];
}

/**
 * The newest time that `quorum` distinct witnesses vouch for: the quorum-th newest of
 * their cosignature times (undefined for a quorum of 0, or fewer cosignatures). Witnesses
 * count only as a quorum, so one buggy or compromised witness cannot move a device's
 * clock: neither to the year 9999 (every root expired, every later checkpoint a rollback,
 * for good) nor onward to keep a frozen device fresh.
 */
export function quorumTime(
  cosignatures: readonly Cosignature[],
  quorum: number,
): number | undefined {
  if (quorum < 1) return undefined;
  return cosignatures.map((cosignature) => cosignature.timestamp).sort((a, b) => b - a)[quorum - 1];
}
