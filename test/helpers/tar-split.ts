import { gzipSync } from 'node:zlib';
import { Crc64Iso } from '../../agent/core/crc64';

/**
 * tar-split records made by hand, byte for byte as tar-split's disassembler writes them
 * (github.com/vbatts/tar-split, tar/asm): per tar entry, a segment line (type 2) with the
 * previous entry's padding and this entry's header blocks, then a file line (type 1) with
 * its name, size and CRC-64; after the last, the end-of-archive blocks as segments.
 */

export const block = 512;

/**
 * A ustar header (POSIX pax "ustar Interchange Format"), with its checksum. `size` is a
 * number (octal) or the raw 12-byte field.
 */
export function tarHeader(
  name: string,
  typeflag: string,
  { size = 0, linkname = '' }: { size?: number | Buffer; linkname?: string } = {},
): Buffer {
  const header = Buffer.alloc(block);
  header.write(name, 0, 100, 'latin1');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  if (typeof size === 'number') header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  else size.copy(header, 124);
  header.write('00000000000\0', 136, 'latin1');
  header.write(typeflag, 156, 'latin1');
  header.write(linkname, 157, 100, 'latin1');
  header.write('ustar\x0000', 257, 'latin1');
  return withChecksum(header);
}

/** `header` (a 512-byte ustar header) with its checksum field made right, in place. */
export function withChecksum(header: Buffer): Buffer {
  header.fill(' ', 148, 156);
  const sum = header.reduce((total, byte) => total + byte, 0);
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return header;
}

/** An extended header (pax 'x', GNU 'L' or 'K') and its data, padded to whole blocks. */
export function extended(
  typeflag: string,
  data: Buffer,
  size: number | Buffer = data.length,
): Buffer {
  const padding = Buffer.alloc((block - (data.length % block)) % block);
  return Buffer.concat([tarHeader('././@LongLink', typeflag, { size }), data, padding]);
}

/** A pax record, `<length> <key>=<value>\n`, its length counting its own digits. */
export function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  for (let digits = 1; ; digits++) {
    const length = digits + rest.length;
    if (String(length).length === digits) return `${length}${rest}`;
  }
}

export interface Member {
  /** The entry's header blocks, extended headers first; a list is one segment each. */
  readonly headers: Buffer | readonly Buffer[];
  readonly name: string;
  readonly content?: Buffer;
  /** For content not written out: its size and recorded CRC-64. */
  readonly size?: number;
  readonly crc?: Buffer;
}

export const crcOf = (content: Buffer) => new Crc64Iso().update(content).digest();

/** A record's JSON lines; `trailing` are the segments after the last file. */
export function recordLines(
  members: readonly Member[],
  trailing: readonly Buffer[] = [Buffer.alloc(1024)],
): object[] {
  const lines: object[] = [];
  let padding = Buffer.alloc(0);
  const segment = (bytes: Buffer) => {
    lines.push({ type: 2, payload: Buffer.concat([padding, bytes]).toString('base64') });
    padding = Buffer.alloc(0);
  };
  for (const member of members) {
    for (const bytes of [member.headers].flat()) segment(bytes);
    const size = member.size ?? member.content?.length ?? 0;
    const crc = member.crc ?? (size > 0 && member.content ? crcOf(member.content) : null);
    lines.push({ type: 1, name: member.name, size, payload: crc?.toString('base64') ?? null });
    padding = Buffer.alloc((block - (size % block)) % block);
  }
  for (const bytes of trailing) segment(bytes);
  return lines;
}

/** The gzip of a record's JSON lines. */
export function gzipLines(lines: readonly object[]): Buffer {
  return gzipSync(`${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
}

/** The gzip of a record's JSON lines; `trailing` are the segments after the last file. */
export function record(members: readonly Member[], trailing?: readonly Buffer[]): Buffer {
  return gzipLines(recordLines(members, trailing));
}

export const file = (name: string, content: string): Member => ({
  headers: tarHeader(name, '0', { size: content.length }),
  name,
  content: Buffer.from(content),
});

/** A pax header with `data` as its records, before a regular file `x`. */
export const paxFile = (data: string): Member => ({
  headers: Buffer.concat([extended('x', Buffer.from(data, 'latin1')), tarHeader('x', '0')]),
  name: 'x',
});
