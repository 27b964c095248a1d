import { VouchError } from '../../core/errors';
import {
  type DigestAlgorithm,
  merkleAlgorithm,
  type StatementStatus,
  statementStatuses,
} from '../../core/statement';

/**
 * The index file's layout (docs/formats.md "Index file"), in one place: the header, the
 * fields of a row with their offsets, and the heap strings. subjects.ts reads and writes
 * the index only through these; the checker threads (sync/entries.ts) write rows with them.
 *
 *   header   magic "VOUCHIX" + format u8 (ASCII digit), u32 rows, u32 heap bytes,
 *            u32 signer-table bytes, u32 keys
 *   rows     digest[32] | logIndex u48 | issuedAt u48 | name u32 | reason u32 | signer u16 |
 *            key u16 | status u8
 *   heap     strings, each u16 length + UTF-8
 *
 * All integers are big-endian.
 */

/**
 * The format this code reads and writes. The version is the magic's last byte, as an ASCII
 * digit, so the files of the first format ("VOUCHIX1") are format 1.
 */
export const indexFormat = 1;

/**
 * A field at a fixed offset in a record (the header, a row). read and write take the
 * record's first byte and treat the field as a big-endian unsigned integer (1 to 6 bytes),
 * with Buffer's reader for its size: a lookup reads a few fields per row it decodes.
 */
export class Field {
  /** The offset of the byte after the field. */
  readonly end: number;
  readonly read: (bytes: Buffer, at: number) => number;
  readonly write: (bytes: Buffer, at: number, value: number) => void;

  constructor(
    readonly offset: number,
    readonly size: number,
  ) {
    this.end = offset + size;
    this.read =
      size === 1
        ? (bytes, at) => bytes[at + offset] as number
        : size === 2
          ? (bytes, at) => bytes.readUInt16BE(at + offset)
          : size === 4
            ? (bytes, at) => bytes.readUInt32BE(at + offset)
            : (bytes, at) => bytes.readUIntBE(at + offset, size);
    this.write = (bytes, at, value) => {
      bytes.writeUIntBE(value, at + offset, size);
    };
  }
}

/** Fields laid out one after another, in the order given; offsets follow from the sizes. */
function layout<const Sizes extends Record<string, number>>(
  sizes: Sizes,
): { readonly [Name in keyof Sizes]: Field } & { readonly size: number } {
  const fields: Record<string, Field> = {};
  let at = 0;
  for (const [name, size] of Object.entries(sizes)) {
    fields[name] = new Field(at, size);
    at += size;
  }
  return { ...fields, size: at } as never;
}

const magic = Buffer.from('VOUCHIX', 'ascii');

const header = layout({
  magic: magic.length,
  format: 1,
  rows: 4,
  heapBytes: 4,
  signerBytes: 4,
  keys: 4,
});

export const headerSize = header.size;

/**
 * The fields of a row. `digest` (32 bytes) is read as bytes, not as a number; `name` is a
 * heap offset, `reason` a heap offset + 1 (0: none); `signer` and `key` index the tables;
 * `status` is {@link encodeStatus}'s byte. A row's fields are at `at + field.offset`, where
 * `at` is the row's first byte ({@link rowAt}).
 */
export const row = layout({
  digest: 32,
  logIndex: 6,
  issuedAt: 6,
  name: 4,
  reason: 4,
  signer: 2,
  key: 2,
  status: 1,
});

export const rowSize = row.size;

/** The largest log index or issuedAt (ms) a row holds. */
export const maxU48 = 2 ** 48 - 1;

/** The first byte of row `index` of an index file. */
export function rowAt(index: number): number {
  return headerSize + index * rowSize;
}

/** The counts the header gives. */
export interface IndexHeader {
  readonly rows: number;
  readonly heapBytes: number;
  readonly signerBytes: number;
  readonly keys: number;
}

/** The header of an index file, of the format this code reads. */
export function readHeader(bytes: Buffer): IndexHeader {
  if (bytes.length < headerSize || !bytes.subarray(0, magic.length).equals(magic)) {
    throw indexError('not a vouch index file');
  }
  const format = String.fromCharCode(header.format.read(bytes, 0));
  if (format !== String(indexFormat)) {
    // A newer vouch wrote it (the device was downgraded): a sync rebuilds it from the log.
    throw indexError(`format ${JSON.stringify(format)}, this vouch reads format ${indexFormat}`);
  }
  return {
    rows: header.rows.read(bytes, 0),
    heapBytes: header.heapBytes.read(bytes, 0),
    signerBytes: header.signerBytes.read(bytes, 0),
    keys: header.keys.read(bytes, 0),
  };
}

/** Writes the header of the format this code writes at the start of `bytes`. */
export function writeHeader(bytes: Buffer, counts: IndexHeader): void {
  magic.copy(bytes, 0);
  header.format.write(bytes, 0, String(indexFormat).charCodeAt(0));
  header.rows.write(bytes, 0, counts.rows);
  header.heapBytes.write(bytes, 0, counts.heapBytes);
  header.signerBytes.write(bytes, 0, counts.signerBytes);
  header.keys.write(bytes, 0, counts.keys);
}

/** Status byte bit: the row's digest is a merkle-sha256-1mib root, clear: its plain SHA-256. */
const merkleBit = 0x80;

/** The status byte: bits 0–6 the index in statementStatuses, bit 7 the digest's kind. */
export function encodeStatus(status: StatementStatus, algorithm: DigestAlgorithm): number {
  const index = statementStatuses.indexOf(status);
  return algorithm === merkleAlgorithm ? index | merkleBit : index;
}

export function decodeStatus(byte: number): StatementStatus {
  return statementStatuses[byte & ~merkleBit] as StatementStatus;
}

/** Whether the status byte marks a merkle-sha256-1mib digest. */
export function isMerkle(byte: number): boolean {
  return (byte & merkleBit) !== 0;
}

/** A heap string's length prefix (u16: a name or reason is at most 65535 bytes). */
export const heapLength = new Field(0, 2);
export const maxHeapString = 0xffff;

/** The heap string at byte `at`. */
export function readHeapString(bytes: Buffer, at: number): string {
  const start = at + heapLength.size;
  return bytes.toString('utf8', start, start + heapLength.read(bytes, at));
}

function indexError(why: string): VouchError {
  return new VouchError('STATE_INVALID', `subject index: ${why}`);
}
