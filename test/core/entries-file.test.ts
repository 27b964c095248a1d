import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EntriesFileReader } from '../../agent/core/entries-file';
import { encodeEntryBundle, fullWidth, splitEntries } from '../../agent/core/tiles';

/**
 * The entries-file reader (core/entries-file.ts) and the one reader of the length-prefixed
 * entry encoding under it (core/tiles.ts splitEntries).
 */

/** The entries file of `entries`: their bundles of 256, one after another. */
function entriesFile(entries: readonly Uint8Array[]): Uint8Array {
  const bundles: Uint8Array[] = [];
  for (let at = 0; at < entries.length; at += fullWidth) {
    bundles.push(encodeEntryBundle(entries.slice(at, at + fullWidth)));
  }
  return new Uint8Array(Buffer.concat(bundles));
}

/** Where each entry of `entries` ends in their encoding. */
function entryEnds(entries: readonly Uint8Array[]): number[] {
  let at = 0;
  return entries.map((entry) => {
    at += 2 + entry.length;
    return at;
  });
}

/** `bytes` in chunks cut at `cuts` (any offsets, in any order). */
function chunksOf(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const offsets = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  return [0, ...offsets].map((from, i) => bytes.subarray(from, [...offsets, bytes.length][i]));
}

/** Entries as hex, which vitest compares much faster than byte arrays. */
const hex = (entries: readonly Uint8Array[]) =>
  entries.map((entry) => Buffer.from(entry).toString('hex'));

/** What splitEntries gives, with the entries as hex. */
function split(bytes: Uint8Array, max?: number) {
  const { entries, end } = splitEntries(bytes, max);
  return { entries: hex(entries), end };
}

function readAll(reader: EntriesFileReader, chunks: readonly Uint8Array[]): Uint8Array[] {
  return chunks.flatMap((chunk) => reader.read(chunk));
}

/** Up to 600 entries (bundles full and partial), some past 255 bytes (both length bytes used). */
const entryLists = fc.array(
  fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 8 }), weight: 9 },
    { arbitrary: fc.uint8Array({ minLength: 250, maxLength: 700 }), weight: 1 },
  ),
  { maxLength: 600, size: 'max' },
);
const cutLists = fc.array(fc.nat(), { maxLength: 40 });

describe('splitEntries', () => {
  it('reads back any list of entries, or the first `max` of them (property)', () => {
    fc.assert(
      fc.property(entryLists, fc.nat(), (entries, max) => {
        const bytes = entriesFile(entries);
        expect(split(bytes)).toEqual({ entries: hex(entries), end: bytes.length });
        const first = Math.min(max, entries.length);
        expect(split(bytes, max)).toEqual({
          entries: hex(entries.slice(0, first)),
          end: first === 0 ? 0 : entryEnds(entries)[first - 1],
        });
      }),
    );
  });

  it('stops before an entry cut short: its length, or its bytes (property)', () => {
    fc.assert(
      fc.property(
        entryLists.filter((entries) => entries.length > 0),
        fc.nat(),
        (entries, cut) => {
          const bytes = entriesFile(entries);
          const length = cut % bytes.length;
          const whole = entryEnds(entries).filter((end) => end <= length);
          expect(split(bytes.subarray(0, length))).toEqual({
            entries: hex(entries.slice(0, whole.length)),
            end: whole.at(-1) ?? 0,
          });
        },
      ),
    );
    expect(splitEntries(Uint8Array.of(0))).toEqual({ entries: [], end: 0 });
    expect(splitEntries(Uint8Array.of(0, 2, 7))).toEqual({ entries: [], end: 0 });
  });
});

describe('EntriesFileReader', () => {
  it('reads back any list of entries, however the file is cut into chunks (property)', () => {
    fc.assert(
      fc.property(entryLists, cutLists, (entries, cuts) => {
        const reader = new EntriesFileReader();
        const read = readAll(reader, chunksOf(entriesFile(entries), cuts));
        expect(hex(read)).toEqual(hex(entries));
        expect(reader.complete).toBe(true);
      }),
    );
  });

  it('refuses a file cut short within an entry, after reading the entries before it (property)', () => {
    fc.assert(
      fc.property(
        entryLists.filter((entries) => entries.length > 0),
        fc.nat(),
        cutLists,
        (entries, cut, cuts) => {
          const bytes = entriesFile(entries);
          const ends = entryEnds(entries);
          const length = cut % bytes.length;
          const reader = new EntriesFileReader();
          const read = readAll(reader, chunksOf(bytes.subarray(0, length), cuts));
          const whole = ends.filter((end) => end <= length).length;
          expect(hex(read)).toEqual(hex(entries.slice(0, whole)));
          expect(reader.complete).toBe(length === 0 || ends.includes(length));
        },
      ),
    );
  });

  it('returns copies: the entries stay as read when the chunks are reused', () => {
    const chunk = new Uint8Array(entriesFile([Uint8Array.of(1, 2), Uint8Array.of(3)]));
    const reader = new EntriesFileReader();
    const first = reader.read(chunk.subarray(0, 5));
    const rest = chunk.slice(5);
    chunk.fill(0);
    expect([...first, ...reader.read(rest)]).toEqual([Uint8Array.of(1, 2), Uint8Array.of(3)]);
    expect(reader.complete).toBe(true);
  });
});
