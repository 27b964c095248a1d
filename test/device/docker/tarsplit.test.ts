import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VouchError } from '../../../agent/core/errors';
import { readTarSplit } from '../../../agent/device/docker/tarsplit';
import { rejectsWith } from '../../helpers/errors';
import {
  crcOf,
  extended,
  file,
  type Member,
  paxFile,
  paxRecord,
  record,
  tarHeader,
} from '../../helpers/tar-split';

/**
 * tar-split records made by hand (test/helpers/tar-split.ts); the real records Docker
 * writes are read in tree.test.ts.
 */

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
