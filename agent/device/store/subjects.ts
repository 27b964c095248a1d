import { VouchError } from '../../core/errors';
import type { StatusRecord } from '../../core/policy';
import {
  type DigestAlgorithm,
  merkleAlgorithm,
  type StatementStatus,
  statementStatuses,
} from '../../core/statement';
import {
  decodeStatus,
  encodeStatus,
  headerSize,
  heapLength,
  isMerkle,
  maxHeapString,
  maxU48,
  readHeader,
  readHeapString,
  row,
  rowSize,
  rowAt as rowStart,
  writeHeader,
} from './index-format';

/**
 * The device's index: subject digest → the statements about it, in one binary buffer that
 * is both the file on disk and the structure in memory (loaded with one read, no parsing,
 * no per-record objects), so a lookup is a binary search and a record costs its row plus
 * its name.
 *
 * Layout (the fields and their offsets: index-format.ts, the one place that knows them):
 *   header   magic "VOUCHIX" + format version, counts of rows, heap bytes, signer-table
 *            bytes and keys
 *   rows     sorted by (digest, log index): digest, log index, issuedAt (ms since epoch), name
 *            and reason (heap offsets), signer and key (table indexes), status (and whether
 *            the digest is the subject's merkle-sha256-1mib root or its plain SHA-256)
 *   heap     strings, each once, in order of first use in log order
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

/**
 * The row codec bound to module-local names: run from source (tsx, vitest), every use of an
 * imported binding is a getter call, which made a lookup a third slower.
 */
const field = row;
const rowAt = rowStart;

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
    const { rows, heapBytes, signerBytes, keys: keyCount } = readHeader(bytes);
    const heapStart = rowAt(rows);
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
    const signers = '[]';
    const bytes = Buffer.alloc(headerSize + signers.length);
    writeHeader(bytes, { rows: 0, heapBytes: 0, signerBytes: signers.length, keys: 0 });
    bytes.write(signers, headerSize, 'utf8');
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
    const bytes = this.#bytes;
    for (const row of this.#rowsOf(merkle, merkleAlgorithm)) {
      const at = rowAt(row);
      const logIndex = field.logIndex.read(bytes, at);
      const names = subjects.get(logIndex) ?? new Set();
      subjects.set(logIndex, names.add(field.name.read(bytes, at)));
    }
    if (subjects.size === 0) return [];
    const digests = new Set<string>();
    for (let row = 0; row < this.#rows; row++) {
      const at = rowAt(row);
      if (this.#isMerkle(row)) continue;
      const names = subjects.get(field.logIndex.read(bytes, at));
      if (names?.has(field.name.read(bytes, at))) digests.add(this.#digest(row));
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
      yield {
        digest: this.#digest(row),
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
    return isMerkle(field.status.read(this.#bytes, rowAt(row)));
  }

  #digest(row: number): string {
    const at = rowAt(row);
    return this.#bytes.toString('hex', at + field.digest.offset, at + field.digest.end);
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
      const at = this.#bytes.readUIntBE(rowAt(mid) + field.digest.offset, 6);
      if (at < prefix || (at === prefix && this.#compareDigest(mid, target) < 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #compareDigest(row: number, target: Buffer): number {
    const at = rowAt(row);
    return this.#bytes.compare(
      target,
      0,
      field.digest.size,
      at + field.digest.offset,
      at + field.digest.end,
    );
  }

  #string(offset: number): string {
    return readHeapString(this.#bytes, this.#heapStart + offset);
  }

  #record(row: number): IndexedRecord {
    const bytes = this.#bytes;
    const at = rowAt(row);
    const reason = field.reason.read(bytes, at);
    return {
      logIndex: BigInt(field.logIndex.read(bytes, at)),
      name: this.#string(field.name.read(bytes, at)),
      status: decodeStatus(field.status.read(bytes, at)),
      signer: this.#signers[field.signer.read(bytes, at)] as string,
      issuedAt: formatIssuedAt(field.issuedAt.read(bytes, at)),
      ...(reason === 0 ? {} : { reason: this.#string(reason - 1) }),
      key: this.#keys[field.key.read(bytes, at)] as string,
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
    if (
      !/^[0-9a-f]{64}$/.test(record.digest) ||
      !statementStatuses.includes(record.status) ||
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
    rows.write(record.digest, at + field.digest.offset, 'hex');
    field.logIndex.write(rows, at, record.logIndex);
    field.issuedAt.write(rows, at, record.issuedAtMs);
    field.name.write(rows, at, 0);
    field.reason.write(rows, at, 0);
    field.signer.write(rows, at, signer);
    field.key.write(rows, at, key);
    field.status.write(rows, at, encodeStatus(record.status, record.algorithm));
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
    this.#heapBase = readHeader(base).heapBytes;
    for (let at = 0; at < this.#heapBase; ) {
      const text = readHeapString(base, baseHeapStart + at);
      this.#offsets.set(text, at);
      at += heapLength.size + heapLength.read(base, baseHeapStart + at);
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
      const logIndex = field.logIndex.read(rows, at);
      const signer = signers[field.signer.read(rows, at)];
      const key = keys[field.key.read(rows, at)];
      if (logIndex < this.#previous || signer === undefined || key === undefined) {
        throw new VouchError('INTERNAL', `subject index: record out of order at ${logIndex}`);
      }
      this.#previous = logIndex;
      const reason = batch.reasons[i];
      field.name.write(rows, at, this.#intern(batch.names[i] as string));
      field.reason.write(rows, at, reason == null ? 0 : this.#intern(reason) + 1);
      field.signer.write(rows, at, signer);
      field.key.write(rows, at, key);
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
    const heapBytes = this.#heapBase + this.#heapAdded;
    const signerTable = Buffer.from(JSON.stringify(this.#signers), 'utf8');
    const out = Buffer.allocUnsafe(
      rowAt(rows) + heapBytes + signerTable.length + this.#keys.length * 32,
    );
    writeHeader(out, {
      rows,
      heapBytes,
      signerBytes: signerTable.length,
      keys: this.#keys.length,
    });
    // Old rows in runs between the new ones; a new row goes after every old row of its
    // digest (it is later in the log).
    let at = headerSize;
    let copied = 0;
    for (const i of order) {
      const row = i * rowSize;
      if (copied < this.baseRows) {
        const digest = fresh.subarray(row + field.digest.offset, row + field.digest.end);
        const until = this.upperBound(digest);
        at += base.copy(out, at, rowAt(copied), rowAt(until));
        copied = until;
      }
      at += fresh.copy(out, at, row, row + rowSize);
    }
    at += base.copy(out, at, rowAt(copied), this.baseHeapStart + this.#heapBase);
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
      if (length > maxHeapString) {
        throw new VouchError('INTERNAL', 'subject index: a name or reason over 65535 bytes');
      }
      offset = this.#heapBase + this.#heapAdded;
      if (offset + heapLength.size + length > 0xffffffff) {
        throw new VouchError('STATE_INVALID', 'subject index: too many names');
      }
      const size = heapLength.size + length;
      while (this.#heapAdded + size > this.#heap.length) this.#heap = grow(this.#heap, 1);
      heapLength.write(this.#heap, this.#heapAdded, length);
      this.#heap.write(key, this.#heapAdded + heapLength.size, 'utf8');
      this.#heapAdded += size;
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
  for (let i = 0; i < n; i++) prefix[i] = rows.readUInt32BE(i * rowSize + field.digest.offset);
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
        .sort((a, b) => compareRowDigests(rows, a * rowSize, b * rowSize) || a - b);
    }
    start = end;
  }
  return order;
}

/** The order of the digests of the rows at bytes `a` and `b` of `rows` (<0, 0, >0). */
function compareRowDigests(rows: Buffer, a: number, b: number): number {
  const { offset, end } = field.digest;
  return rows.compare(rows, b + offset, b + end, a + offset, a + end);
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
