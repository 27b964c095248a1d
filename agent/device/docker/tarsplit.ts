import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { VouchError } from '../../core/errors';
import { describeIssues } from '../../core/json';

/**
 * A layer's file list from its tar-split record (github.com/vbatts/tar-split, tar/storage):
 * the gzip of JSON lines Docker keeps beside each layer (`tar-split.json.gz`) to rebuild
 * the layer's tar byte for byte from the files on disk. A line of type 2 (segment) holds
 * raw tar bytes, base64: headers and padding; a line of type 1 (file) stands for one tar
 * entry, with its name, size and, for content, the CRC-64/ISO of that content (crc64.ts).
 * Between two file lines come the header blocks of the second, so each entry's type and
 * link target are read from the last segments' tar headers (POSIX ustar, pax extended
 * headers for `linkpath`, GNU `K` long link names).
 *
 * Names and link targets are byte strings (latin1: one character per byte), as tar and
 * the filesystem hold them; they need not be UTF-8.
 */

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface LayerEntry {
  /** The entry's path as the tar has it (byte string). */
  readonly name: string;
  readonly type: EntryType;
  /** Content bytes (0 for all but files). */
  readonly size: number;
  /** CRC-64/ISO of the content, 8 bytes; null when there is none (size 0). */
  readonly crc: Buffer | null;
  /** A symlink's or hard link's target (byte string); '' for other types. */
  readonly linkname: string;
}

/** Compressed, a layer of a hundred thousand files has a record of a few MiB. */
const maxRecordBytes = 256 * 2 ** 20;
/**
 * Decompressed, an entry is a segment line with at least one 512-byte header (684 base64
 * characters) and a file line: about a kilobyte, so 1 GiB holds a million entries, several
 * times the largest layers (a few hundred thousand files). Without it a record of
 * maxRecordBytes could inflate a thousandfold (deflate's limit) and take hours. It also
 * bounds the entries kept: at most 2³⁰ / 684, about 1.6 million.
 */
const maxDecompressedBytes = 2 ** 30;
/** A line holds one entry: a segment of headers and padding is kilobytes (≤ 1 MiB). */
const maxLineBytes = 4 * 2 ** 20;
/** The header blocks of one entry, pax and GNU long names included. */
const maxHeaderBytes = 4 * 2 ** 20;
/**
 * Names and link targets kept, in all: a Linux path is at most 4096 bytes (PATH_MAX) and a
 * real layer's average well under 100, so this is far above a million-file layer.
 */
const maxNameBytes = 256 * 2 ** 20;
const block = 512;

const lineSchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal(1),
    name: z.string().optional(),
    /** The name as base64 bytes, when it is not valid UTF-8 (tar-split issue #17). */
    name_raw: z.base64().optional(),
    size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
    payload: z.base64().nullable().optional(),
  }),
  z.looseObject({ type: z.literal(2), payload: z.base64().nullable().optional() }),
]);

/** ustar typeflags (POSIX pax "ustar Interchange Format"; '7' is contiguous, '\0' old). */
const entryTypes: Readonly<Record<string, EntryType>> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/**
 * Reads `path` (a `tar-split.json.gz`) into its entries, in tar order. A pax global header
 * is left out: Docker ignores it when it unpacks a layer. BAD_DATA for a record that is
 * not one; a read failure is the caller's to map.
 */
export async function readTarSplit(path: string): Promise<LayerEntry[]> {
  const bad = (why: string) => new VouchError('BAD_DATA', `tar-split record ${path}: ${why}`);
  const compressed = await readBounded(path, bad);
  const gunzip = createGunzip();
  gunzip.end(compressed);
  try {
    return await parseLines(lines(gunzip, bad), bad);
  } catch (error) {
    if (error instanceof VouchError) throw error;
    throw bad((error as Error).message);
  }
}

/** The file's bytes, refused by its size before any is read (it may be anything on disk). */
async function readBounded(path: string, bad: (why: string) => VouchError): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    if (size > maxRecordBytes) throw bad(`over ${maxRecordBytes} bytes`);
    // Read what stat saw: a file still growing is cut there, and its gzip then fails.
    const bytes = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const { bytesRead } = await file.read(bytes, read, size - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return bytes.subarray(0, read);
  } finally {
    await file.close();
  }
}

async function parseLines(
  source: AsyncIterable<string>,
  bad: (why: string) => VouchError,
): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [];
  /**
   * Segments since the last file line: the next entry's header blocks, or, after the last
   * file line, the end-of-archive blocks and whatever padding the tar had after them, which
   * need not fit maxHeaderBytes. Past it they are dropped, and the next file line refused.
   */
  let headers: Buffer[] = [];
  let headerBytes = 0;
  let nameBytes = 0;
  /** Where the next byte would be in the rebuilt tar: headers start at multiples of 512. */
  let offset = 0;
  for await (const line of source) {
    if (line.length === 0) continue;
    let parsed: z.infer<typeof lineSchema>;
    try {
      parsed = lineSchema.parse(JSON.parse(line));
    } catch (error) {
      const why = error instanceof z.ZodError ? describeIssues(error) : (error as Error).message;
      throw bad(`entry ${entries.length + 1}: ${why}`);
    }
    if (parsed.type === 2) {
      const bytes = Buffer.from(parsed.payload ?? '', 'base64');
      offset += bytes.length;
      headerBytes += bytes.length;
      if (headerBytes <= maxHeaderBytes) headers.push(bytes);
      else headers = [];
      continue;
    }
    if (headerBytes > maxHeaderBytes) throw bad(`headers over ${maxHeaderBytes} bytes`);
    const raw = Buffer.concat(headers);
    // The segments began with the previous entry's padding, up to the next block.
    const header = mainHeader(raw, (block - ((offset - raw.length) % block)) % block, bad);
    headers = [];
    headerBytes = 0;
    const size = parsed.size ?? 0;
    offset += size;
    if (header.typeflag === 'g') continue;
    const name =
      parsed.name_raw === undefined
        ? Buffer.from(parsed.name ?? '', 'utf8').toString('latin1')
        : Buffer.from(parsed.name_raw, 'base64').toString('latin1');
    // An old-style regular file named with a trailing slash is a directory (Go archive/tar).
    const type =
      header.typeflag === '\0' && name.endsWith('/') ? 'dir' : entryTypes[header.typeflag];
    if (!type) throw bad(`entry type ${JSON.stringify(header.typeflag)} is not supported`);
    const crc = parsed.payload ? Buffer.from(parsed.payload, 'base64') : null;
    if (type === 'file' && size > 0 && crc?.length !== 8) {
      throw bad(`${JSON.stringify(name)} has no CRC-64 of its content`);
    }
    nameBytes += name.length + header.linkname.length;
    if (nameBytes > maxNameBytes) throw bad(`names over ${maxNameBytes} bytes`);
    entries.push({ name, type, size: type === 'file' ? size : 0, crc, linkname: header.linkname });
  }
  return entries;
}

/**
 * The typeflag and link target of the entry whose header blocks are `raw` from `start`:
 * pax extended headers ('x') and GNU long names ('L', 'K') come first, then the entry's
 * own header.
 */
function mainHeader(
  raw: Buffer,
  start: number,
  bad: (why: string) => VouchError,
): { readonly typeflag: string; readonly linkname: string } {
  let linkname: string | undefined;
  for (let at = start; at + block <= raw.length; ) {
    const header = raw.subarray(at, at + block);
    if (!checksumMatches(header)) throw bad(`a tar header's checksum does not match`);
    const typeflag = String.fromCharCode(header[156] as number);
    if (typeflag !== 'x' && typeflag !== 'L' && typeflag !== 'K') {
      return { typeflag, linkname: linkname ?? cString(header.subarray(157, 257)) };
    }
    const size = numeric(header.subarray(124, 136));
    const data = raw.subarray(at + block, at + block + (size ?? 0));
    if (size === undefined || data.length !== size) throw bad('a tar extended header is cut off');
    if (typeflag === 'x') linkname = paxRecords(data, bad).get('linkpath') ?? linkname;
    if (typeflag === 'K') linkname = cString(data);
    at += block + Math.ceil(size / block) * block;
  }
  throw bad('a file entry without its tar header');
}

/** ustar: the header's byte sum with the checksum field as spaces, signed or unsigned. */
function checksumMatches(header: Buffer): boolean {
  const stored = numeric(header.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < block; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    unsigned += byte;
    signed += byte < 0x80 ? byte : byte - 0x100;
  }
  return stored === unsigned || stored === signed;
}

/** A numeric header field: octal digits (NUL- or space-terminated), or GNU base-256. */
function numeric(field: Buffer): number | undefined {
  if (((field[0] as number) & 0x80) !== 0) {
    let value = (field[0] as number) & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const digits = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trimStart();
  return /^[0-7]+$/.test(digits) ? Number.parseInt(digits, 8) : undefined;
}

/**
 * pax records (POSIX pax "pax Extended Header"): `<length> <key>=<value>\n`, the decimal
 * length counting the whole record. Checked as Go's archive/tar parsePAXRecord does (the
 * reader Docker and tar-split unpack layers with), so each record moves forward: a length
 * of 0, signed or past the data would not.
 */
function paxRecords(data: Buffer, bad: (why: string) => VouchError): Map<string, string> {
  const records = new Map<string, string>();
  for (let at = 0; at < data.length; ) {
    const space = data.indexOf(0x20, at);
    const digits = space < 0 ? '' : data.toString('latin1', at, space);
    const end = at + Number(digits);
    // The shortest record is `5 k=\n`; a key is not empty.
    const equals = data.indexOf(0x3d, space + 1);
    if (
      !/^[1-9][0-9]*$/.test(digits) ||
      end - at < 5 ||
      end <= space + 1 ||
      end > data.length ||
      data[end - 1] !== 0x0a ||
      equals <= space + 1 ||
      equals >= end - 1
    ) {
      throw bad('a pax extended header is malformed');
    }
    records.set(
      data.toString('latin1', space + 1, equals),
      data.toString('latin1', equals + 1, end - 1),
    );
    at = end;
  }
  return records;
}

/** A NUL-terminated header string, as bytes (latin1). */
function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.toString('latin1', 0, end < 0 ? bytes.length : end);
}

/** The lines of a stream, each at most maxLineBytes, in all at most maxDecompressedBytes. */
async function* lines(
  stream: AsyncIterable<Buffer>,
  bad: (why: string) => VouchError,
): AsyncGenerator<string> {
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > maxDecompressedBytes) throw bad(`over ${maxDecompressedBytes} bytes decompressed`);
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline >= 0; newline = chunk.indexOf(0x0a, start)) {
      yield Buffer.concat([...partial, chunk.subarray(start, newline)]).toString('utf8');
      partial = [];
      partialBytes = 0;
      start = newline + 1;
    }
    partial.push(chunk.subarray(start));
    partialBytes += chunk.length - start;
    if (partialBytes > maxLineBytes) throw bad(`a line is over ${maxLineBytes} bytes`);
  }
  if (partialBytes > 0) yield Buffer.concat(partial).toString('utf8');
}
