import { VouchError } from '../../core/errors';
import type { StatusRecord } from '../../core/policy';
import { type StatementStatus, statementStatuses } from '../../core/statement';

/**
 * The device's index: subject digest → the statements about it, in one binary buffer that
 * is both the file on disk and the structure in memory (loaded with one read, no parsing,
 * no per-record objects), so a lookup is a binary search and a record costs its row plus
 * its name.
 *
 * Layout (all integers big-endian):
 *   header   magic "VOUCHIX1", u32 rows, u32 heap bytes, u32 signer-table bytes, u32 keys
 *   rows     57 bytes each, sorted by (digest, log index):
 *            digest[32] | logIndex u48 | issuedAt u48 (ms since epoch) | name u32 (heap
 *            offset) | reason u32 (heap offset + 1, 0 = none) | signer u16 | key u16 | status u8
 *   heap     strings, each u16 length + UTF-8, each once, in order of first use in log order
 *   signers  JSON array of signer IDs, in order of first use in log order
 *   keys     32-byte raw Ed25519 public keys (the key that signed each statement), likewise
 *
 * The layout is canonical: the same records give the same bytes, however they arrived
 * (one import or many syncs). Because heap and tables grow in log order, a sync only
 * appends to them: the old rows are copied as they are, the new ones slotted in.
 */

/** A record as the index returns it: what the policy needs, and the key that signed it. */
export interface IndexedRecord extends StatusRecord {
  /** Lowercase hex of the raw Ed25519 public key that signed the statement. */
  readonly key: string;
}

/** A record to add: one subject of one verified statement. */
export interface NewRecord {
  /** Lowercase hex SHA-256 of the subject. */
  readonly sha256: string;
  readonly logIndex: number;
  readonly name: string;
  readonly status: StatementStatus;
  readonly signer: string;
  /** issuedAt in ms since the epoch. */
  readonly issuedAtMs: number;
  readonly reason?: string;
  readonly key: string;
}

const magic = Buffer.from('VOUCHIX1', 'ascii');
const headerSize = magic.length + 16;
export const rowSize = 57;
const maxU48 = 2 ** 48 - 1;

export class SubjectIndex {
  readonly #bytes: Buffer;
  readonly #rows: number;
  readonly #heapStart: number;
  readonly #signers: readonly string[];
  readonly #keys: readonly string[];

  private constructor(bytes: Buffer) {
    const fail = (why: string): never => {
      throw new VouchError('STATE_INVALID', `subject index: ${why}`);
    };
    if (bytes.length < headerSize || !bytes.subarray(0, magic.length).equals(magic)) {
      fail('not a vouch index file');
    }
    const rows = bytes.readUInt32BE(8);
    const heapBytes = bytes.readUInt32BE(12);
    const signerBytes = bytes.readUInt32BE(16);
    const keyCount = bytes.readUInt32BE(20);
    const heapStart = headerSize + rows * rowSize;
    const signersStart = heapStart + heapBytes;
    const keysStart = signersStart + signerBytes;
    if (keysStart + keyCount * 32 !== bytes.length) fail('sections do not add up');
    let signers: unknown;
    try {
      signers = JSON.parse(bytes.toString('utf8', signersStart, keysStart));
    } catch {
      fail('signer table is not JSON');
    }
    if (!Array.isArray(signers) || !signers.every((s) => typeof s === 'string')) {
      fail('signer table is not a list of IDs');
    }
    const keys: string[] = [];
    for (let i = 0; i < keyCount; i++) {
      keys.push(bytes.toString('hex', keysStart + i * 32, keysStart + (i + 1) * 32));
    }
    this.#bytes = bytes;
    this.#rows = rows;
    this.#heapStart = heapStart;
    this.#signers = signers as string[];
    this.#keys = keys;
  }

  static empty(): SubjectIndex {
    const bytes = Buffer.alloc(headerSize + 2);
    magic.copy(bytes, 0);
    bytes.writeUInt32BE(2, 16);
    bytes.write('[]', headerSize, 'utf8');
    return new SubjectIndex(bytes);
  }

  /** An index from its file bytes (checked against the committed digest by the caller). */
  static decode(bytes: Uint8Array): SubjectIndex {
    return new SubjectIndex(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /** The bytes to write: the same buffer the index reads from. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Number of records (statement subjects). */
  get rows(): number {
    return this.#rows;
  }

  /** The records about `sha256` (64 lowercase hex), in log order. */
  lookup(sha256: string): IndexedRecord[] {
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      throw new VouchError('BAD_DATA', `not a SHA-256 digest: ${sha256.slice(0, 80)}`);
    }
    const target = Buffer.from(sha256, 'hex');
    const records: IndexedRecord[] = [];
    for (let row = this.#lowerBound(target); row < this.#rows; row++) {
      if (this.#compareDigest(row, target) !== 0) break;
      records.push(this.#record(row));
    }
    return records;
  }

  /** Every record in index order, with its digest (for export, tests and re-checks). */
  *records(): Generator<{ readonly sha256: string; readonly record: IndexedRecord }> {
    for (let row = 0; row < this.#rows; row++) {
      const at = headerSize + row * rowSize;
      yield { sha256: this.#bytes.toString('hex', at, at + 32), record: this.#record(row) };
    }
  }

  /**
   * A new index with these records added: a sync's verified statements, in log order,
   * for entries after those already indexed.
   */
  with(added: readonly NewRecord[]): SubjectIndex {
    const bytes = this.#bytes;
    // The tables and the heap as they are, extended in log order.
    const signers = [...this.#signers];
    const keys = [...this.#keys];
    const signerIds = new Map(signers.map((signer, i) => [signer, i]));
    const keyIds = new Map(keys.map((key, i) => [key, i]));
    const heapBytes = bytes.readUInt32BE(12);
    const offsets = new Map<string, number>();
    for (let at = 0; at < heapBytes; ) {
      const length = bytes.readUInt16BE(this.#heapStart + at);
      const start = this.#heapStart + at + 2;
      offsets.set(bytes.toString('latin1', start, start + length), at);
      at += 2 + length;
    }
    const heap: Buffer[] = [bytes.subarray(this.#heapStart, this.#heapStart + heapBytes)];
    let heapLength = heapBytes;
    const intern = (text: string): number => {
      const encoded = Buffer.from(text, 'utf8');
      const key = encoded.toString('latin1');
      let offset = offsets.get(key);
      if (offset === undefined) {
        offset = heapLength;
        offsets.set(key, offset);
        const entry = Buffer.allocUnsafe(2 + encoded.length);
        entry.writeUInt16BE(encoded.length, 0);
        encoded.copy(entry, 2);
        heap.push(entry);
        heapLength += entry.length;
      }
      return offset;
    };
    const tableIndex = (table: string[], ids: Map<string, number>, value: string): number => {
      let id = ids.get(value);
      if (id === undefined) {
        id = table.length;
        ids.set(value, id);
        table.push(value);
      }
      return id;
    };
    let previous = -1;
    const fresh = added.map((record) => {
      if (record.logIndex < previous) {
        throw new VouchError('INTERNAL', 'subject index: records must come in log order');
      }
      previous = record.logIndex;
      return encodeRow(record, {
        name: intern(record.name),
        reason: record.reason === undefined ? 0 : intern(record.reason) + 1,
        signer: tableIndex(signers, signerIds, record.signer),
        key: tableIndex(keys, keyIds, record.key),
      });
    });
    if (signers.length > 0xffff || keys.length > 0xffff || heapLength > 0xffffffff) {
      throw new VouchError('STATE_INVALID', 'subject index: too many signers, keys or names');
    }
    // Hex sorts like the bytes it spells; the sort is stable, so log order within a digest.
    fresh.sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));

    const rows = this.#rows + fresh.length;
    const signerTable = Buffer.from(JSON.stringify(signers), 'utf8');
    const heapStart = headerSize + rows * rowSize;
    const out = Buffer.allocUnsafe(heapStart + heapLength + signerTable.length + keys.length * 32);
    magic.copy(out, 0);
    out.writeUInt32BE(rows, 8);
    out.writeUInt32BE(heapLength, 12);
    out.writeUInt32BE(signerTable.length, 16);
    out.writeUInt32BE(keys.length, 20);
    // Old rows in runs between the new ones; a new row goes after every old row of its
    // digest (it is later in the log).
    let at = headerSize;
    let copied = 0;
    for (const row of fresh) {
      const until = this.#upperBound(row.digest);
      at += bytes.copy(out, at, headerSize + copied * rowSize, headerSize + until * rowSize);
      copied = until;
      at += row.bytes.copy(out, at);
    }
    at += bytes.copy(out, at, headerSize + copied * rowSize, this.#heapStart);
    for (const part of heap) at += part.copy(out, at);
    at += signerTable.copy(out, at);
    for (const key of keys) at += out.write(key, at, 'hex');
    return new SubjectIndex(out);
  }

  /** The first row whose digest is above `digest`. */
  #upperBound(digest: Buffer): number {
    let row = this.#lowerBound(digest);
    while (row < this.#rows && this.#compareDigest(row, digest) === 0) row++;
    return row;
  }

  #lowerBound(target: Buffer): number {
    // Compare the first 6 bytes as a number (a plain JS read), the rest only on a tie.
    const prefix = target.readUIntBE(0, 6);
    let lo = 0;
    let hi = this.#rows;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const at = this.#bytes.readUIntBE(headerSize + mid * rowSize, 6);
      if (at < prefix || (at === prefix && this.#compareDigest(mid, target) < 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #compareDigest(row: number, target: Buffer): number {
    const at = headerSize + row * rowSize;
    return this.#bytes.compare(target, 0, 32, at, at + 32);
  }

  #string(offset: number): string {
    const at = this.#heapStart + offset;
    return this.#bytes.toString('utf8', at + 2, at + 2 + this.#bytes.readUInt16BE(at));
  }

  #record(row: number): IndexedRecord {
    const bytes = this.#bytes;
    const at = headerSize + row * rowSize;
    const reason = bytes.readUInt32BE(at + 48);
    return {
      logIndex: BigInt(bytes.readUIntBE(at + 32, 6)),
      name: this.#string(bytes.readUInt32BE(at + 44)),
      status: statementStatuses[bytes[at + 56] as number] as StatementStatus,
      signer: this.#signers[bytes.readUInt16BE(at + 52)] as string,
      issuedAt: formatIssuedAt(bytes.readUIntBE(at + 38, 6)),
      ...(reason === 0 ? {} : { reason: this.#string(reason - 1) }),
      key: this.#keys[bytes.readUInt16BE(at + 54)] as string,
    };
  }
}

/** A new row, its strings already in the heap and tables. */
function encodeRow(
  record: NewRecord,
  refs: {
    readonly name: number;
    readonly reason: number;
    readonly signer: number;
    readonly key: number;
  },
): { readonly sha256: string; readonly digest: Buffer; readonly bytes: Buffer } {
  const status = statementStatuses.indexOf(record.status);
  if (
    !/^[0-9a-f]{64}$/.test(record.sha256) ||
    !/^[0-9a-f]{64}$/.test(record.key) ||
    status < 0 ||
    !Number.isSafeInteger(record.logIndex) ||
    record.logIndex < 0 ||
    record.logIndex > maxU48 ||
    !Number.isSafeInteger(record.issuedAtMs) ||
    record.issuedAtMs < 0 ||
    record.issuedAtMs > maxU48 ||
    Buffer.byteLength(record.name) > 0xffff ||
    (record.reason !== undefined && Buffer.byteLength(record.reason) > 0xffff)
  ) {
    throw new VouchError('INTERNAL', `subject index: record out of range at ${record.logIndex}`);
  }
  const bytes = Buffer.allocUnsafe(rowSize);
  bytes.write(record.sha256, 0, 'hex');
  bytes.writeUIntBE(record.logIndex, 32, 6);
  bytes.writeUIntBE(record.issuedAtMs, 38, 6);
  bytes.writeUInt32BE(refs.name, 44);
  bytes.writeUInt32BE(refs.reason, 48);
  bytes.writeUInt16BE(refs.signer, 52);
  bytes.writeUInt16BE(refs.key, 54);
  bytes[56] = status;
  return { sha256: record.sha256, digest: bytes.subarray(0, 32), bytes };
}

/** RFC 3339 UTC, whole seconds unless the statement gave milliseconds. */
function formatIssuedAt(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
