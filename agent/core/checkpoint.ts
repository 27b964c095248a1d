import { cosignNote } from './cosignature';
import { decodeBase64, encodeBase64 } from './encoding';
import { VouchError } from './errors';
import type { PrivateKey, PublicKey } from './keys';
import { hashSize } from './merkle';
import { ed25519Signer, ed25519Verifier, type Note, parseNote, signNote, verifyNote } from './note';

/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): a signed note whose text is
 * the log's origin, its tree size and its RFC 6962 root hash, then optional extension lines.
 */

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  readonly extensions: readonly string[];
}

/** A checkpoint whose note carried a valid signature by the log key. */
export interface SignedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The whole note, with every signature line (cosignatures included). */
  readonly note: Note;
}

/** Origins and extension lines are short identifiers; anything longer is not a checkpoint. */
export const maxLineLength = 1024;

function invalid(message: string): VouchError {
  return new VouchError('CHECKPOINT_INVALID', message);
}

/** Parses the note text of a checkpoint (tlog-checkpoint §Note text). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw invalid('checkpoint does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const [origin = '', sizeText = '', rootText = '', ...extensions] = lines;
  if (lines.length < 3) throw invalid('a checkpoint has at least three lines');
  if (lines.some((line) => line === '')) throw invalid('checkpoint has an empty line');
  if (lines.some((line) => line.length > maxLineLength)) {
    throw invalid(`checkpoint has a line longer than ${maxLineLength} characters`);
  }
  // §Note text 2: ASCII decimal, no leading zeroes unless the tree is empty.
  if (!/^(?:0|[1-9][0-9]{0,19})$/.test(sizeText)) {
    throw invalid(`checkpoint size ${JSON.stringify(sizeText.slice(0, 40))} is not a decimal`);
  }
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw invalid(`checkpoint size ${sizeText} is too large`);
  let root: Uint8Array;
  try {
    root = decodeBase64(rootText, 'checkpoint root hash');
  } catch (error) {
    throw new VouchError('CHECKPOINT_INVALID', 'checkpoint root hash is not base64', {
      cause: error,
    });
  }
  if (root.length !== hashSize) throw invalid(`checkpoint root hash is ${root.length} bytes`);
  return { origin, size, root, extensions };
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, root, extensions } = checkpoint;
  const text = [origin, String(size), encodeBase64(root), ...extensions].map((l) => `${l}\n`);
  const formatted = text.join('');
  // Only what parses back is written: no empty lines, a 32-byte root, a safe-integer size.
  parseCheckpoint(formatted);
  return formatted;
}

/**
 * A checkpoint note signed by the log key, whose key name is the origin (tlog-checkpoint
 * §Signatures: the key name SHOULD match the origin; we require it).
 */
export function openCheckpoint(input: Uint8Array | string, logKey: PublicKey): SignedCheckpoint {
  const note = parseNote(input);
  verifyNote(note, [ed25519Verifier(logKey)]);
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== logKey.name) {
    throw invalid(`checkpoint is for ${checkpoint.origin}, expected ${logKey.name}`);
  }
  return { checkpoint, note };
}

/**
 * The note of a checkpoint signed by the log key, named after the origin, and cosigned by
 * it at `timestamp` (POSIX seconds): every checkpoint a log writes carries a signed time
 * (cosignature.ts logCosigner says why the same key).
 */
export function signCheckpoint(checkpoint: Checkpoint, key: PrivateKey, timestamp: number): Note {
  const signed = signNote({ text: formatCheckpoint(checkpoint), signatures: [] }, [
    ed25519Signer(key, checkpoint.origin),
  ]);
  return cosignNote(signed, key, checkpoint.origin, timestamp);
}
