import { VouchError } from '../../core/errors';
import type { StatusRecord } from '../../core/policy';
import {
  type DigestAlgorithm,
  merkleAlgorithm,
  type StatementStatus,
  statementStatuses,
} from '../../core/statement';

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
 *            (bits 0–6: index in statementStatuses; bit 7 set: the digest is the subject's
 *            merkle-sha256-1mib root, clear: its plain SHA-256)
 *   heap     strings, each u16 length + UTF-8, each once, in order of first use in log order
 *   signers  JSON array of signer IDs, in order of first use in log order
 *   keys     32-byte raw Ed25519 public keys (the key that signed each statement), likewise
 *
 * The layout is canonical: the same records give the same bytes, however they arrived
 * (one import or many syncs). Because heap and tables grow in log order, a sync only
 * appends to them: the old rows are copied as they are, the new ones slotted in.
 *
 * A subject with a chunked digest (core/statement.ts merkleAlgorithm) has two rows, one per
 * digest. The two kinds share one key space but must never answer for each other: the
 * plain SHA-256 of 0x00 ‖ G is the one-chunk root of G (RFC 6962 §2.1 leaf hash), so a
 * lookup names the algorithm and sees only rows of that kind. An index written before
 * chunked digests existed has no row with bit 7 set and reads the same.
 */

/** A record as the index returns it: what the policy needs, and the key that signed it. */
export interface IndexedRecord extends StatusRecord {
  /** Lowercase hex of the raw Ed25519 public key that signed the statement. */
  readonly key: string;
}

/** A record to add: one digest of one subject of one verified statement. */
export interface NewRecord {
  /** Lowercase hex digest of the subject, by `algorithm`. */
  readonly digest: string;
  readonly algorithm: DigestAlgorithm;
  readonly logIndex: number;
  readonly name: string;
  readonly status: StatementStatus;
  readonly signer: string;
  /** issuedAt in ms since the epoch. */
  readonly issuedAtMs: number;
  readonly reason?: string;
  readonly key: string;
}

/**
 * Records on their way to the index, as a checker thread sends them: their rows in the
 * index layout, with the strings beside them. A batch crosses threads as a few arrays
 * rather than an object per record, and the main thread only fills in the string fields.
 */
export interface RecordBatch {
  /**
   * rowSize bytes per record: digest, log index, issuedAt and status; signer and key as
   * indexes into `signers` and `keys`; name and reason still unset.
   */
  readonly rows: Uint8Array;
  /** Per record: the subject name. */
  readonly names: readonly string[];
  /** Per record: the reason, or null. */
  readonly reasons: readonly (string | null)[];
  readonly signers: readonly string[];
  /** Lowercase hex Ed25519 public keys. */
  readonly keys: readonly string[];
}

const magic = Buffer.from('VOUCHIX1', 'ascii');
const headerSize = magic.length + 16;
export const rowSize = 57;
const maxU48 = 2 ** 48 - 1;
/** Status byte bit: the row's digest is a merkle-sha256-1mib root. */
const merkleBit = 0x80;
const statusOffset = 56;

export class SubjectIndex {
  readonly #bytes: Buffer;
  readonly #rows: number;
  readonly #heapStart: number;
  readonly #signers: readonly string[];
  readonly #keys: readonly string[];
  #hasMerkle: boolean | undefined;

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

  /** The records about `digest` (64 lowercase hex) by `algorithm`, in log order. */
  lookup(digest: string, algorithm: DigestAlgorithm): IndexedRecord[] {
    const records: IndexedRecord[] = [];
    for (const row of this.#rowsOf(digest, algorithm)) records.push(this.#record(row));
    return records;
  }

  /** Whether any record is keyed by a merkle-sha256-1mib root (a scan, on first use). */
  get hasMerkle(): boolean {
    if (this.#hasMerkle === undefined) {
      let row = 0;
      while (row < this.#rows && !this.#isMerkle(row)) row++;
      this.#hasMerkle = row < this.#rows;
    }
    return this.#hasMerkle;
  }

  /**
   * The plain SHA-256 digests that the statements behind the rows of merkle root `merkle`
   * give the same subjects (same log index, same name): with them, a file found by its
   * chunked digest also meets the statements that name only its SHA-256 (a revocation
   * signed with `--digest sha256:…`). A scan of the rows: it runs once per large file.
   */
  plainDigestsOf(merkle: string): string[] {
    const subjects = new Map<number, Set<number>>();
    for (const row of this.#rowsOf(merkle, merkleAlgorithm)) {
      const at = headerSize + row * rowSize;
      const logIndex = this.#bytes.readUIntBE(at + 32, 6);
      const names = subjects.get(logIndex) ?? new Set();
      subjects.set(logIndex, names.add(this.#bytes.readUInt32BE(at + 44)));
    }
    if (subjects.size === 0) return [];
    const digests = new Set<string>();
    for (let row = 0; row < this.#rows; row++) {
      const at = headerSize + row * rowSize;
      if (this.#isMerkle(row)) continue;
      const names = subjects.get(this.#bytes.readUIntBE(at + 32, 6));
      if (names?.has(this.#bytes.readUInt32BE(at + 44))) {
        digests.add(this.#bytes.toString('hex', at, at + 32));
      }
    }
    return [...digests];
  }

  /** Every record in index order, with its digest (for export, tests and re-checks). */
  *records(): Generator<{
    readonly digest: string;
    readonly algorithm: DigestAlgorithm;
    readonly record: IndexedRecord;
  }> {
    for (let row = 0; row < this.#rows; row++) {
      const at = headerSize + row * rowSize;
      yield {
        digest: this.#bytes.toString('hex', at, at + 32),
        algorithm: this.#isMerkle(row) ? merkleAlgorithm : 'sha256',
        record: this.#record(row),
      };
    }
  }

  /**
   * A builder of the next index: this one, and the records of a sync's verified
   * statements added in log order, for entries after those already indexed (about
   * `expectedRows` of them: room is made for as many).
   */
  extend(expectedRows = 0): IndexBuilder {
    return new IndexBuilder(
      this.#bytes,
      this.#rows,
      this.#heapStart,
      this.#signers,
      this.#keys,
      (digest) => this.#upperBound(digest),
      expectedRows,
    );
  }

  /** The rows about `digest` by `algorithm`, in log order. */
  *#rowsOf(digest: string, algorithm: DigestAlgorithm): Generator<number> {
    if (!/^[0-9a-f]{64}$/.test(digest)) {
      throw new VouchError('BAD_DATA', `not a ${algorithm} digest: ${digest.slice(0, 80)}`);
    }
    const merkle = algorithm === merkleAlgorithm;
    const target = Buffer.from(digest, 'hex');
    for (let row = this.#lowerBound(target); row < this.#rows; row++) {
      if (this.#compareDigest(row, target) !== 0) break;
      if (this.#isMerkle(row) === merkle) yield row;
    }
  }

  #isMerkle(row: number): boolean {
    return ((this.#bytes[headerSize + row * rowSize + statusOffset] as number) & merkleBit) !== 0;
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
      status: statementStatuses[
        (bytes[at + statusOffset] as number) & ~merkleBit
      ] as StatementStatus,
      signer: this.#signers[bytes.readUInt16BE(at + 52)] as string,
      issuedAt: formatIssuedAt(bytes.readUIntBE(at + 38, 6)),
      ...(reason === 0 ? {} : { reason: this.#string(reason - 1) }),
      key: this.#keys[bytes.readUInt16BE(at + 54)] as string,
    };
  }
}

/** Collects records into a {@link RecordBatch}, in log order. */
export class RecordBatchWriter {
  #rows: Buffer = Buffer.allocUnsafe(rowSize * 256);
  readonly #names: string[] = [];
  readonly #reasons: (string | null)[] = [];
  readonly #signers: string[] = [];
  readonly #keys: string[] = [];
  readonly #signerIds = new Map<string, number>();
  readonly #keyIds = new Map<string, number>();

  add(record: NewRecord): void {
    const status = statementStatuses.indexOf(record.status);
    if (
      !/^[0-9a-f]{64}$/.test(record.digest) ||
      status < 0 ||
      !Number.isSafeInteger(record.logIndex) ||
      record.logIndex < 0 ||
      record.logIndex > maxU48 ||
      !Number.isSafeInteger(record.issuedAtMs) ||
      record.issuedAtMs < 0 ||
      record.issuedAtMs > maxU48
    ) {
      throw new VouchError('INTERNAL', `subject index: record out of range at ${record.logIndex}`);
    }
    let key = this.#keyIds.get(record.key);
    if (key === undefined) {
      if (!/^[0-9a-f]{64}$/.test(record.key)) {
        throw new VouchError('INTERNAL', `subject index: not a key at ${record.logIndex}`);
      }
      key = tableIndex(this.#keys, this.#keyIds, record.key);
    }
    const signer = tableIndex(this.#signers, this.#signerIds, record.signer);
    const count = this.#names.length;
    if ((count + 1) * rowSize > this.#rows.length) this.#rows = grow(this.#rows, rowSize);
    const rows = this.#rows;
    const at = count * rowSize;
    rows.write(record.digest, at, 'hex');
    rows.writeUIntBE(record.logIndex, at + 32, 6);
    rows.writeUIntBE(record.issuedAtMs, at + 38, 6);
    rows.fill(0, at + 44, at + 52);
    rows.writeUInt16BE(signer, at + 52);
    rows.writeUInt16BE(key, at + 54);
    rows[at + statusOffset] = record.algorithm === merkleAlgorithm ? status | merkleBit : status;
    this.#names.push(record.name);
    this.#reasons.push(record.reason ?? null);
  }

  /** The batch; its rows have a buffer of their own, which can be transferred. */
  finish(): RecordBatch {
    return {
      rows: new Uint8Array(this.#rows.subarray(0, this.#names.length * rowSize)),
      names: this.#names,
      reasons: this.#reasons,
      signers: this.#signers,
      keys: this.#keys,
    };
  }
}

/**
 * Record batches added to an index as a sync's results arrive, held as they will be
 * written (57-byte rows, new heap strings) rather than as objects, so a large import stays
 * small; {@link build} sorts the new rows and merges them with the old ones.
 */
class IndexBuilder {
  #rows: Buffer;
  #count = 0;
  /** The heap strings new to this index, after the old heap. */
  #heap: Buffer = Buffer.allocUnsafe(64 * 1024);
  #heapAdded = 0;
  readonly #heapBase: number;
  /** Heap offsets by string (decoded from UTF-8, so equal bytes are one entry). */
  readonly #offsets = new Map<string, number>();
  readonly #signers: string[];
  readonly #keys: string[];
  readonly #signerIds: Map<string, number>;
  readonly #keyIds: Map<string, number>;
  #previous = -1;

  constructor(
    private readonly base: Buffer,
    private readonly baseRows: number,
    private readonly baseHeapStart: number,
    signers: readonly string[],
    keys: readonly string[],
    private readonly upperBound: (digest: Buffer) => number,
    expectedRows: number,
  ) {
    this.#rows = Buffer.allocUnsafe(rowSize * Math.max(expectedRows, 256));
    this.#signers = [...signers];
    this.#keys = [...keys];
    this.#signerIds = new Map(signers.map((signer, i) => [signer, i]));
    this.#keyIds = new Map(keys.map((key, i) => [key, i]));
    this.#heapBase = base.readUInt32BE(12);
    for (let at = 0; at < this.#heapBase; ) {
      const length = base.readUInt16BE(baseHeapStart + at);
      const start = baseHeapStart + at + 2;
      this.#offsets.set(base.toString('utf8', start, start + length), at);
      at += 2 + length;
    }
  }

  /** Records added so far. */
  get rows(): number {
    return this.#count;
  }

  /** Adds a batch of records; batches come in log order. */
  add(batch: RecordBatch): void {
    const n = batch.names.length;
    if (batch.rows.length !== n * rowSize || batch.reasons.length !== n) {
      throw new VouchError('INTERNAL', 'subject index: a record batch does not add up');
    }
    const signers = batch.signers.map((signer) =>
      tableIndex(this.#signers, this.#signerIds, signer),
    );
    const keys = batch.keys.map((key) => tableIndex(this.#keys, this.#keyIds, key));
    if (this.#signers.length > 0xffff || this.#keys.length > 0xffff) {
      throw new VouchError('STATE_INVALID', 'subject index: too many signers or keys');
    }
    while ((this.#count + n) * rowSize > this.#rows.length) {
      this.#rows = grow(this.#rows, rowSize);
    }
    const rows = this.#rows;
    rows.set(batch.rows, this.#count * rowSize);
    for (let i = 0; i < n; i++) {
      const at = (this.#count + i) * rowSize;
      const logIndex = rows.readUIntBE(at + 32, 6);
      const signer = signers[rows.readUInt16BE(at + 52)];
      const key = keys[rows.readUInt16BE(at + 54)];
      if (logIndex < this.#previous || signer === undefined || key === undefined) {
        throw new VouchError('INTERNAL', `subject index: record out of order at ${logIndex}`);
      }
      this.#previous = logIndex;
      const reason = batch.reasons[i];
      rows.writeUInt32BE(this.#intern(batch.names[i] as string), at + 44);
      rows.writeUInt32BE(reason == null ? 0 : this.#intern(reason) + 1, at + 48);
      rows.writeUInt16BE(signer, at + 52);
      rows.writeUInt16BE(key, at + 54);
    }
    this.#count += n;
  }

  /** The new index: the old rows and the new ones, sorted by (digest, log index). */
  build(): SubjectIndex {
    const base = this.base;
    const fresh = this.#rows;
    const n = this.#count;
    const order = sortedRows(fresh, n);
    const rows = this.baseRows + n;
    const heapLength = this.#heapBase + this.#heapAdded;
    const signerTable = Buffer.from(JSON.stringify(this.#signers), 'utf8');
    const heapStart = headerSize + rows * rowSize;
    const out = Buffer.allocUnsafe(
      heapStart + heapLength + signerTable.length + this.#keys.length * 32,
    );
    magic.copy(out, 0);
    out.writeUInt32BE(rows, 8);
    out.writeUInt32BE(heapLength, 12);
    out.writeUInt32BE(signerTable.length, 16);
    out.writeUInt32BE(this.#keys.length, 20);
    // Old rows in runs between the new ones; a new row goes after every old row of its
    // digest (it is later in the log).
    let at = headerSize;
    let copied = 0;
    for (const i of order) {
      const row = i * rowSize;
      if (copied < this.baseRows) {
        const until = this.upperBound(fresh.subarray(row, row + 32));
        at += base.copy(out, at, headerSize + copied * rowSize, headerSize + until * rowSize);
        copied = until;
      }
      at += fresh.copy(out, at, row, row + rowSize);
    }
    at += base.copy(out, at, headerSize + copied * rowSize, this.baseHeapStart + this.#heapBase);
    at += this.#heap.copy(out, at, 0, this.#heapAdded);
    at += signerTable.copy(out, at);
    for (const key of this.#keys) at += out.write(key, at, 'hex');
    return SubjectIndex.decode(out);
  }

  #intern(text: string): number {
    // A lone surrogate is written as U+FFFD: key by what the bytes will read back as.
    const key = /[\ud800-\udfff]/.test(text) ? Buffer.from(text, 'utf8').toString('utf8') : text;
    let offset = this.#offsets.get(key);
    if (offset === undefined) {
      const length = Buffer.byteLength(key, 'utf8');
      if (length > 0xffff) {
        throw new VouchError('INTERNAL', 'subject index: a name or reason over 65535 bytes');
      }
      offset = this.#heapBase + this.#heapAdded;
      if (offset + 2 + length > 0xffffffff) {
        throw new VouchError('STATE_INVALID', 'subject index: too many names');
      }
      while (this.#heapAdded + 2 + length > this.#heap.length) this.#heap = grow(this.#heap, 1);
      this.#heap.writeUInt16BE(length, this.#heapAdded);
      this.#heap.write(key, this.#heapAdded + 2, 'utf8');
      this.#heapAdded += 2 + length;
      this.#offsets.set(key, offset);
    }
    return offset;
  }
}

export type { IndexBuilder };

/**
 * The row numbers of `rows` in (digest, row number) order: a radix sort on the digest's
 * first 4 bytes (stable, so row order is kept among equal ones; no comparator calls),
 * then each run of rows sharing those 4 bytes by its whole digest.
 */
function sortedRows(rows: Buffer, n: number): Uint32Array {
  const prefix = new Uint32Array(n);
  for (let i = 0; i < n; i++) prefix[i] = rows.readUInt32BE(i * rowSize);
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let next = new Uint32Array(n);
  const counts = new Uint32Array(257);
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      (counts[(((prefix[i] as number) >>> shift) & 0xff) + 1] as number)++;
    }
    for (let digit = 0; digit < 256; digit++) {
      counts[digit + 1] = (counts[digit + 1] as number) + (counts[digit] as number);
    }
    for (let i = 0; i < n; i++) {
      const row = order[i] as number;
      const digit = ((prefix[row] as number) >>> shift) & 0xff;
      next[(counts[digit] as number)++] = row;
    }
    [order, next] = [next, order];
  }
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && prefix[order[end] as number] === prefix[order[start] as number]) end++;
    if (end - start > 1) {
      order
        .subarray(start, end)
        .sort(
          (a, b) =>
            rows.compare(rows, b * rowSize, b * rowSize + 32, a * rowSize, a * rowSize + 32) ||
            a - b,
        );
    }
    start = end;
  }
  return order;
}

function tableIndex(table: string[], ids: Map<string, number>, value: string): number {
  let id = ids.get(value);
  if (id === undefined) {
    id = table.length;
    ids.set(value, id);
    table.push(value);
  }
  return id;
}

/** A buffer twice as large (whole units of `unit` bytes), with the old contents. */
function grow(buffer: Buffer, unit: number): Buffer {
  const larger = Buffer.allocUnsafe(Math.ceil((buffer.length * 2) / unit) * unit);
  buffer.copy(larger);
  return larger;
}

/** RFC 3339 UTC, whole seconds unless the statement gave milliseconds. */
function formatIssuedAt(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
