import { decodeBase64, encodeBase64 } from './encoding';
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

/**
 * C2SP signed notes (https://c2sp.org/signed-note): a UTF-8 text ending in a newline, a
 * blank line, then signature lines `— <key name> base64(key ID ‖ signature)`.
 */

/** signed-note §Format: at least 16 signatures must fit, post-quantum ones up to ~5 kB. */
export const maxNoteSize = 256 * 1024;
export const maxSignatures = 100;
/** A signature line: a key name and base64 of a key ID and a signature of up to ~5 kB. */
const maxSignatureLine = 8 * 1024;

export interface NoteSignature {
  readonly name: string;
  /** The 4-byte key ID. */
  readonly keyId: Uint8Array;
  /** The signature bytes after the key ID. */
  readonly signature: Uint8Array;
}

export interface Note {
  /** The signed text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** A key that can check signatures on notes, identified by name and key ID (signed-note §Signatures). */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: Uint8Array;
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

export interface NoteSigner {
  readonly name: string;
  readonly keyId: Uint8Array;
  sign(text: Uint8Array): Uint8Array;
}

const emDash = '\u2014';
const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();
const loneSurrogate = /[\ud800-\udfff]/u;

function invalid(message: string): VouchError {
  return new VouchError('NOTE_INVALID', message);
}

/** signed-note §Format: no ASCII control characters other than newline. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 && code !== 0x0a) return true;
  }
  return false;
}

/** Checks a note text: valid UTF-8 (as a JS string), no control characters, newline at the end. */
function checkText(text: string): void {
  if (hasControlCharacter(text)) throw invalid('note contains a control character');
  if (!text.endsWith('\n')) throw invalid('note text does not end with a newline');
  if (loneSurrogate.test(text)) throw invalid('note text is not valid Unicode');
}

/** Parses a signed note's syntax; it says nothing about whose signatures these are. */
export function parseNote(input: Uint8Array | string): Note {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxNoteSize) throw invalid(`note is larger than ${maxNoteSize} bytes`);
  let message: string;
  try {
    message = typeof input === 'string' ? input : utf8.decode(input);
  } catch (error) {
    throw new VouchError('NOTE_INVALID', 'note is not valid UTF-8', { cause: error });
  }
  checkText(message);
  // signed-note §Format: the text is separated from the signatures by the last empty line.
  const split = message.lastIndexOf('\n\n');
  if (split < 0) throw invalid('note has no signatures (no blank line)');
  const text = message.slice(0, split + 1);
  const lines = message.slice(split + 2, -1).split('\n');
  if (lines.length > maxSignatures) throw invalid(`note has more than ${maxSignatures} signatures`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

function parseSignatureLine(line: string): NoteSignature {
  if (line.length > maxSignatureLine) throw invalid('note has an oversized signature line');
  const parts = line.split(' ');
  const [dash, name = '', encoded = ''] = parts;
  if (parts.length !== 3 || dash !== emDash || !isValidKeyName(name)) {
    throw invalid(`not a signature line: ${JSON.stringify(line.slice(0, 100))}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = decodeBase64(encoded, 'note signature');
  } catch (error) {
    throw new VouchError('NOTE_INVALID', `signature by ${name} is not base64`, { cause: error });
  }
  if (bytes.length < 5) throw invalid(`signature by ${name} is too short`);
  return { name, keyId: bytes.slice(0, 4), signature: bytes.slice(4) };
}

export function formatNote(note: Note): string {
  checkText(note.text);
  const lines = note.signatures.map(
    ({ name, keyId, signature }) =>
      `${emDash} ${name} ${encodeBase64(new Uint8Array([...keyId, ...signature]))}\n`,
  );
  return `${note.text}\n${lines.join('')}`;
}

/** Adds signatures to a note text; the result is a note ready to be written out. */
export function signNote(note: Note, signers: readonly NoteSigner[]): Note {
  checkText(note.text);
  const bytes = encoder.encode(note.text);
  const added = signers.map((signer) => ({
    name: signer.name,
    keyId: signer.keyId,
    signature: signer.sign(bytes),
  }));
  return { text: note.text, signatures: [...note.signatures, ...added] };
}

function sameKey(a: { name: string; keyId: Uint8Array }, b: NoteSignature): boolean {
  return a.name === b.name && a.keyId.every((byte, i) => byte === b.keyId[i]);
}

/** A signature line that verified, with the key that verified it. */
export interface VerifiedSignature {
  readonly verifier: NoteVerifier;
  readonly signature: NoteSignature;
}

/**
 * signed-note §Signatures: signatures by unknown keys are ignored, and a signature by a
 * known key (same name and key ID) must verify or the note is rejected. Returns every
 * verified signature line, in note order: a key may have several (cosignatures of
 * different times), and which of them counts is the caller's to say.
 */
export function verifyNoteSignatures(
  note: Note,
  verifiers: readonly NoteVerifier[],
): VerifiedSignature[] {
  const text = encoder.encode(note.text);
  const verified: VerifiedSignature[] = [];
  for (const signature of note.signatures) {
    const verifier = verifiers.find((candidate) => sameKey(candidate, signature));
    if (!verifier) continue;
    if (!verifier.verify(text, signature.signature)) {
      throw new VouchError('NOTE_UNVERIFIED', `signature by ${signature.name} does not verify`);
    }
    verified.push({ verifier, signature });
  }
  return verified;
}

/** {@link verifyNoteSignatures}, and at least one signature by a known key must verify. */
export function verifyNote(note: Note, verifiers: readonly NoteVerifier[]): VerifiedSignature[] {
  const verified = verifyNoteSignatures(note, verifiers);
  if (verified.length === 0) {
    throw new VouchError(
      'NOTE_UNVERIFIED',
      `note is not signed by ${verifiers.map((v) => v.name).join(' or ') || 'any known key'}`,
    );
  }
  return verified;
}

/** signed-note §Ed25519 signatures: type 0x01 over the note text. */
export function ed25519Verifier(key: PublicKey): NoteVerifier {
  if (key.type !== KeyType.Ed25519) {
    throw new VouchError('BAD_KEY', `${key.name} is not a note signing key (type 0x01)`);
  }
  return {
    name: key.name,
    keyId: key.keyId,
    verify: (text, signature) => verifyBytes(key, text, signature),
  };
}

export function ed25519Signer(key: PrivateKey, name: string): NoteSigner {
  if (!isValidKeyName(name)) throw new VouchError('BAD_KEY', `invalid key name ${name}`);
  return {
    name,
    keyId: keyIdOf(name, KeyType.Ed25519, key.raw),
    sign: (text) => signBytes(key, text),
  };
}
