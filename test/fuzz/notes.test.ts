import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCheckpoint, signCheckpoint } from '../../agent/core/checkpoint';
import { cosignNote, maxTimestamp, verifyCosignatures } from '../../agent/core/cosignature';
import type { ErrorCode } from '../../agent/core/errors';
import {
  KeyType,
  namePublicKey,
  parsePrivateKey,
  parsePublicKey,
  parseVerifierString,
  signBytes,
  verifierString,
} from '../../agent/core/keys';
import { ed25519Signer, formatNote, maxNoteSize, parseNote, signNote } from '../../agent/core/note';
import { verifyCheckpointFrom } from '../../agent/device/sync/sync';
import { testKey, testRoot } from '../helpers/trust';
import { applyLineEdit, fuzz, lineEdit, mutatedBytes, parses } from './fuzz';

/**
 * Signed notes, checkpoints and cosignatures as a device reads a mirror's checkpoint
 * (sync.ts verifyCheckpointFrom: note, log signature, checkpoint body, witness quorum, the
 * log's own time), and key texts (verifier strings, PEM).
 */

const origin = 'log.example.org/vouch';
const logKey = testKey(origin);
const witness = testKey('witness.example.org', KeyType.Cosignature);
const root = testRoot({
  rootKeys: [testKey('root-1').public],
  threshold: 1,
  log: { origin, key: logKey.public },
  witnesses: [witness.public],
  witnessQuorum: 1,
});
const body = { origin, size: 1234, root: new Uint8Array(32).fill(9), extensions: ['ext one'] };
const time = 1_750_000_000;

/** A checkpoint note signed by the log (with its own time) and cosigned by the witness. */
function signedNote(text: string): string {
  const signed = signNote({ text, signatures: [] }, [ed25519Signer(logKey.private, origin)]);
  const own = cosignNote(signed, logKey.private, origin, time);
  return formatNote(cosignNote(own, witness.private, witness.public.name, time + 5));
}
const valid = signedNote(formatCheckpoint(body));

const checkpointCodes: ErrorCode[] = [
  'NOTE_INVALID',
  'NOTE_UNVERIFIED',
  'CHECKPOINT_INVALID',
  'WITNESS_QUORUM',
];

function checkNote(note: Uint8Array | string): void {
  const bytes = typeof note === 'string' ? Buffer.from(note) : note;
  const verified = parses(
    () => verifyCheckpointFrom('fuzz', new Uint8Array(bytes), root),
    checkpointCodes,
  );
  if (verified === undefined) return;
  expect(verified.checkpoint.origin).toBe(origin);
  expect(Number.isSafeInteger(verified.checkpoint.size)).toBe(true);
  expect(verified.checkpoint.root).toHaveLength(32);
  expect(verified.time).toBeLessThanOrEqual(maxTimestamp * 1000);
}

describe('fuzz: signed notes and checkpoints (a device reading a mirror checkpoint)', () => {
  it('takes the valid checkpoint', () => {
    expect(verifyCheckpointFrom('fuzz', Buffer.from(valid), root).time).toBe((time + 5) * 1000);
  });

  it('refuses byte mutants of a signed, cosigned checkpoint with a typed error', () => {
    fuzz(mutatedBytes(Buffer.from(valid)), checkNote);
  });

  it('refuses line mutants of the whole note (signature lines dropped, repeated, swapped, huge)', () => {
    fuzz(fc.array(lineEdit, { minLength: 1, maxLength: 3 }), (edits) =>
      checkNote(edits.reduce(applyLineEdit, valid)),
    );
  });

  it('reaches the checkpoint parser: mutated bodies, signed and cosigned again', () => {
    const text = formatCheckpoint(body);
    fuzz(
      fc.oneof(
        fc
          .array(lineEdit, { minLength: 1, maxLength: 3 })
          .map((edits) => edits.reduce(applyLineEdit, text)),
        mutatedBytes(Buffer.from(text)).map((bytes) => Buffer.from(bytes).toString('utf8')),
      ),
      (mutated) => {
        // Only what signNote can sign (a valid note text) gets signatures; the rest is sent bare.
        const note = parses(() => signedNote(mutated), ['NOTE_INVALID']);
        checkNote(note ?? `${mutated}\n`);
      },
    );
  });

  it('reads any cosignature time, u64 included, and never counts one past 9999', () => {
    const text = formatCheckpoint(body);
    const signedByLog = signNote({ text, signatures: [] }, [ed25519Signer(logKey.private, origin)]);
    fuzz(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (timestamp) => {
      const message = Buffer.from(`cosignature/v1\ntime ${timestamp}\n${text}`);
      const signature = Buffer.alloc(72);
      signature.writeBigUInt64BE(timestamp);
      Buffer.from(signBytes(witness.private, message)).copy(signature, 8);
      const line = { name: witness.public.name, keyId: witness.public.keyId, signature };
      const note = { ...signedByLog, signatures: [...signedByLog.signatures, line] };
      const cosigned = parses(
        () => verifyCosignatures(note, [witness.public], 1),
        ['NOTE_UNVERIFIED'],
      );
      expect(cosigned !== undefined).toBe(timestamp <= BigInt(maxTimestamp));
      checkNote(formatNote(note));
    });
  });

  it('refuses a note at its 256 KiB cap by size, and one of many signature lines by count', () => {
    const line = `\u2014 ${origin} ${Buffer.alloc(68).toString('base64')}\n`;
    const big = `${valid}${line.repeat(Math.ceil(maxNoteSize / line.length))}`;
    expect(() => parseNote(big)).toThrow(/larger than/);
    const many = `${valid}${line.repeat(100)}`;
    expect(Buffer.byteLength(many)).toBeLessThan(maxNoteSize);
    expect(() => parseNote(many)).toThrow(/more than 100 signatures/);
  });
});

describe('fuzz: key texts', () => {
  const verifier = verifierString(witness.public);

  it('reads mutants of a verifier string as a key or BAD_KEY', () => {
    fuzz(
      fc.oneof(
        mutatedBytes(Buffer.from(verifier)),
        fc.string({ unit: 'binary', maxLength: 80 }).map((s) => Buffer.from(s)),
      ),
      (bytes) => {
        const text = Buffer.from(bytes).toString('utf8');
        const key = parses(() => parseVerifierString(text), ['BAD_KEY']);
        if (key !== undefined) expect(verifierString(key)).toBe(text.trim());
        parses(() => parsePublicKey(text, undefined, KeyType.Cosignature), ['BAD_KEY']);
      },
    );
  });

  it('reads mutants of PEM keys, public and private, as a key or BAD_KEY', () => {
    fuzz(
      fc.oneof(
        mutatedBytes(Buffer.from(logKey.publicPem)),
        mutatedBytes(Buffer.from(logKey.privatePem)),
      ),
      (bytes) => {
        const text = Buffer.from(bytes).toString('utf8');
        const key = parses(() => parsePublicKey(text, 'name'), ['BAD_KEY']);
        if (key !== undefined) expect(key.raw).toHaveLength(32);
        parses(() => parsePrivateKey(text), ['BAD_KEY']);
      },
    );
  });

  it('names any bytes given as a key, under any name, or refuses them with BAD_KEY', () => {
    fuzz(
      fc.tuple(fc.string({ maxLength: 20 }), fc.uint8Array({ minLength: 32, maxLength: 32 })),
      ([name, raw]) => {
        const key = parses(() => namePublicKey(name, raw), ['BAD_KEY']);
        if (key !== undefined) expect(parseVerifierString(verifierString(key)).raw).toEqual(raw);
      },
    );
  });
});

// signCheckpoint is what the log writes: every body it takes parses back (checkpoint.ts).
describe('fuzz: checkpoint bodies a log signs', () => {
  it('signs only what a device reads back', () => {
    fuzz(
      fc.record({
        origin: fc.string({ unit: 'binary', maxLength: 30 }),
        size: fc.oneof(fc.maxSafeNat(), fc.double()),
        extensions: fc.array(fc.string({ unit: 'binary', maxLength: 10 }), { maxLength: 3 }),
      }),
      (fields) => {
        const checkpoint = { ...fields, root: new Uint8Array(32) };
        const note = parses(
          () => signCheckpoint(checkpoint, logKey.private, time),
          ['CHECKPOINT_INVALID', 'NOTE_INVALID', 'BAD_KEY'],
        );
        if (note !== undefined) expect(parseNote(formatNote(note)).text).toBe(note.text);
      },
    );
  });
});
