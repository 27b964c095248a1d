import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Crc64Iso } from '../../../agent/core/crc64';
import { VouchError } from '../../../agent/core/errors';
import { readTarSplit } from '../../../agent/device/docker/tarsplit';
import { rejectsWith } from '../../helpers/errors';

/**
 * tar-split records made by hand, byte for byte as tar-split's disassembler writes them
 * (github.com/vbatts/tar-split, tar/asm): per tar entry, a segment line (type 2) with the
 * previous entry's padding and this entry's header blocks, then a file line (type 1) with
 * its name, size and CRC-64; after the last, the end-of-archive blocks as segments. The
 * real records Docker writes are read in tree.test.ts.
 */

const block = 512;

/**
 * A ustar header (POSIX pax "ustar Interchange Format"), with its checksum. `size` is a
 * number (octal) or the raw 12-byte field.
 */
function tarHeader(
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
  header.fill(' ', 148, 156);
  const sum = header.reduce((total, byte) => total + byte, 0);
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return header;
}

/** An extended header (pax 'x', GNU 'L' or 'K') and its data, padded to whole blocks. */
function extended(typeflag: string, data: Buffer, size: number | Buffer = data.length): Buffer {
  const padding = Buffer.alloc((block - (data.length % block)) % block);
  return Buffer.concat([tarHeader('././@LongLink', typeflag, { size }), data, padding]);
}

/** A pax record, `<length> <key>=<value>\n`, its length counting its own digits. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  for (let digits = 1; ; digits++) {
    const length = digits + rest.length;
    if (String(length).length === digits) return `${length}${rest}`;
  }
}

interface Member {
  /** The entry's header blocks, extended headers first; a list is one segment each. */
  readonly headers: Buffer | readonly Buffer[];
  readonly name: string;
  readonly content?: Buffer;
  /** For content not written out: its size and recorded CRC-64. */
  readonly size?: number;
  readonly crc?: Buffer;
}

const crcOf = (content: Buffer) => new Crc64Iso().update(content).digest();

/** The gzip of a record's JSON lines; `trailing` are the segments after the last file. */
function record(members: readonly Member[], trailing: readonly Buffer[] = [Buffer.alloc(1024)]) {
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
  return gzipSync(`${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
}

const file = (name: string, content: string): Member => ({
  headers: tarHeader(name, '0', { size: content.length }),
  name,
  content: Buffer.from(content),
});

/** A pax header with `data` as its records, before a regular file `x`. */
const paxFile = (data: string): Member => ({
  headers: Buffer.concat([extended('x', Buffer.from(data, 'latin1')), tarHeader('x', '0')]),
  name: 'x',
});

describe('readTarSplit', () => {
  let dir: string;
  let count = 0;
  /** Writes `bytes` as a record file and returns its path. */
  const saved = async (bytes: Buffer) => {
    const path = join(dir, `record-${++count}.json.gz`);
    await writeFile(path, bytes);
    return path;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vouch-tarsplit-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads each entry: type, size, CRC-64, link target (ustar, pax, GNU)', async () => {
    const longTarget = `/${'t'.repeat(200)}`;
    const globals = Buffer.from(paxRecord('comment', 'any global'));
    const path = await saved(
      record([
        { headers: tarHeader('d/', '5'), name: 'd/' },
        file('d/a.txt', 'hello'),
        { headers: tarHeader('l', '2', { linkname: 'd/a.txt' }), name: 'l' },
        { headers: tarHeader('h', '1', { linkname: 'd/a.txt' }), name: 'h' },
        // A pax global header: no entry (Docker ignores it).
        {
          headers: tarHeader('pax_global_header', 'g', { size: globals.length }),
          name: 'pax_global_header',
          content: globals,
        },
        {
          headers: Buffer.concat([
            extended('x', Buffer.from(paxRecord('linkpath', longTarget))),
            tarHeader('pax-link', '2', { linkname: 'cut' }),
          ]),
          name: 'pax-link',
        },
        {
          headers: Buffer.concat([
            extended('K', Buffer.from(`${longTarget}\0`)),
            tarHeader('gnu-link', '2', { linkname: 'cut' }),
          ]),
          name: 'gnu-link',
        },
        { headers: tarHeader('f', '6'), name: 'f' },
        // An old-style regular file ('\0') named with a slash is a directory.
        { headers: tarHeader('old/', '\0'), name: 'old/' },
      ]),
    );
    const link = (name: string, type: 'symlink' | 'hardlink', linkname: string) => ({
      name,
      type,
      size: 0,
      crc: null,
      linkname,
    });
    expect(await readTarSplit(path)).toEqual([
      { name: 'd/', type: 'dir', size: 0, crc: null, linkname: '' },
      { name: 'd/a.txt', type: 'file', size: 5, crc: crcOf(Buffer.from('hello')), linkname: '' },
      link('l', 'symlink', 'd/a.txt'),
      link('h', 'hardlink', 'd/a.txt'),
      link('pax-link', 'symlink', longTarget),
      link('gnu-link', 'symlink', longTarget),
      { name: 'f', type: 'fifo', size: 0, crc: null, linkname: '' },
      { name: 'old/', type: 'dir', size: 0, crc: null, linkname: '' },
    ]);
  });

  it('reads GNU base-256 sizes: an extended header, a file over 8 GiB', async () => {
    const base256 = (value: number) => {
      const field = Buffer.alloc(12);
      field.writeUIntBE(value, 6, 6);
      field[0] = 0x80;
      return field;
    };
    const target = `/${'g'.repeat(150)}`;
    const data = Buffer.from(`${target}\0`);
    const huge = 2 ** 33 + 1; // over 0o77777777777, what 11 octal digits hold
    const crc = Buffer.from('0123456789abcdef', 'hex');
    const path = await saved(
      record([
        {
          headers: tarHeader('huge.bin', '0', { size: base256(huge) }),
          name: 'huge.bin',
          size: huge,
          crc,
        },
        // After 511 bytes of padding, the next entry's header.
        {
          headers: Buffer.concat([
            extended('K', data, base256(data.length)),
            tarHeader('link', '2', { linkname: 'cut' }),
          ]),
          name: 'link',
        },
      ]),
    );
    expect(await readTarSplit(path)).toEqual([
      { name: 'huge.bin', type: 'file', size: huge, crc, linkname: '' },
      { name: 'link', type: 'symlink', size: 0, crc: null, linkname: target },
    ]);
  });

  it('is BAD_DATA for a tar header whose checksum does not match', async () => {
    const header = tarHeader('a.txt', '0', { size: 1 });
    header[0] = 'b'.charCodeAt(0);
    const path = await saved(
      record([{ headers: header, name: 'a.txt', content: Buffer.from('a') }]),
    );
    const error = await rejectsWith(readTarSplit(path), 'BAD_DATA');
    expect(error.message).toBe(`tar-split record ${path}: a tar header's checksum does not match`);
  });

  it('is BAD_DATA, promptly, for a pax record whose length does not move forward', async () => {
    const malformed = [
      '12 path=abc\n0 x=y\n', // length 0 after a valid record: once looped for ever
      '12 path=abc\n-6 x=y\n', // a signed length would move backwards
      ' 6 x=y\n', // no digits before the space
      '+6 x=y\n',
      '3 x\n', // shorter than `5 k=\n`
      '9 x=y\n', // past the data
      '6 x=yz', // not ending in a newline
      '6 xyz\n', // no `=`
      '6 =yz\n', // an empty key
    ];
    const paths = await Promise.all(malformed.map((data) => saved(record([paxFile(data)]))));
    // In a child with a deadline: a loop that never ends would hold this thread, and
    // vitest's own timeout with it.
    const script = `import('./agent/device/docker/tarsplit.ts').then(async ({ readTarSplit }) => {
      for (const path of process.argv.slice(1)) {
        console.log(await readTarSplit(path).then(() => 'read', (error) => error.code));
      }
    })`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script, ...paths], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(child.signal, 'still running after 30 s').toBeNull();
    expect(child.stdout.trim().split('\n'), child.stderr).toEqual(malformed.map(() => 'BAD_DATA'));
    const error = await rejectsWith(readTarSplit(paths[0] as string), 'BAD_DATA');
    expect(error.message).toBe(`tar-split record ${paths[0]}: a pax extended header is malformed`);
  });

  it('reads any pax data to its records or BAD_DATA (property)', async () => {
    const token = fc.constantFrom('0', '1', '5', '6', '12', ' ', '=', '\n', 'x', '-', 'linkpath');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(token, fc.string()), { maxLength: 12 }), async (parts) => {
        const path = await saved(record([paxFile(parts.join(''))]));
        const outcome = await readTarSplit(path).catch((error: unknown) => error);
        await rm(path);
        if (Array.isArray(outcome)) expect(outcome).toHaveLength(1);
        else {
          expect(outcome).toBeInstanceOf(VouchError);
          expect((outcome as VouchError).code).toBe('BAD_DATA');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('reads a record whose end-of-archive padding is over 4 MiB', async () => {
    const mib = Buffer.alloc(2 ** 20);
    const path = await saved(record([file('a.txt', 'a')], [mib, mib, mib, mib, mib]));
    expect((await readTarSplit(path)).map((entry) => entry.name)).toEqual(['a.txt']);
  });

  it('is BAD_DATA for an entry with over 4 MiB of headers', async () => {
    const mib = Buffer.alloc(2 ** 20);
    const padded: Member = {
      headers: [mib, mib, mib, mib, tarHeader('b.txt', '0')],
      name: 'b.txt',
    };
    const path = await saved(record([file('a.txt', 'a'), padded]));
    const error = await rejectsWith(readTarSplit(path), 'BAD_DATA');
    expect(error.message).toBe(`tar-split record ${path}: headers over 4194304 bytes`);
  });

  it('is BAD_DATA for a record over 256 MiB (refused by its size)', async () => {
    // Sparse: the size is there, the bytes are not.
    const path = await saved(Buffer.alloc(0));
    await truncate(path, 256 * 2 ** 20 + 1);
    const error = await rejectsWith(readTarSplit(path), 'BAD_DATA');
    expect(error.message).toBe(`tar-split record ${path}: over 268435456 bytes`);
  });
});
