import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSurrogateEscape } from '../agent/core/surrogate-escape';
import {
  makeDirectory,
  openRegularFile,
  openRegularFileSync,
  readExistingFile,
  readFileCapped,
  readOpenFileCapped,
  requireAbsent,
  writeFileDurably,
} from '../agent/files';
import { rejectsWith } from './helpers/errors';

const dir = mkdtempSync(join(tmpdir(), 'vouch-files-'));

describe('capped reads', () => {
  it('refuses a file over the cap and reads one at the cap', async () => {
    writeFileSync(join(dir, 'ten'), '0123456789');
    expect(Buffer.from((await readFileCapped(join(dir, 'ten'), 10, 'x')) ?? []).toString()).toBe(
      '0123456789',
    );
    await rejectsWith(readFileCapped(join(dir, 'ten'), 9, 'x'), 'PAYLOAD_TOO_LARGE');
  });

  it('reads on past the size the stat gave, up to the cap (a FIFO stats as 0 bytes)', async () => {
    const data = Buffer.alloc(100_000, 7);
    for (const [cap, fits] of [
      [data.length, true],
      [data.length - 1, false],
    ] as const) {
      const fifo = join(dir, `fifo-${cap}`);
      execFileSync('mkfifo', [fifo]);
      // The writer blocks until the reader opens the FIFO; the reader may stop early.
      const writer = writeFile(fifo, data).catch(() => {});
      const handle = await open(fifo, 'r');
      const read = readOpenFileCapped(handle, fifo, cap, 'x').finally(() => handle.close());
      if (fits) expect(Buffer.from(await read).equals(data)).toBe(true);
      else await rejectsWith(read, 'PAYLOAD_TOO_LARGE');
      await writer;
    }
  });

  it('tells a missing file apart: undefined, or an error with the caller’s code', async () => {
    expect(await readFileCapped(join(dir, 'absent'), 10, 'x')).toBeUndefined();
    const io = await rejectsWith(readExistingFile(join(dir, 'absent'), 10, 'trust root'), 'IO');
    expect(io.message).toBe(`trust root ${join(dir, 'absent')} does not exist`);
    await rejectsWith(readExistingFile(join(dir, 'absent'), 10, 'x', 'LOG_INVALID'), 'LOG_INVALID');
    await rejectsWith(readFileCapped(dir, 1 << 20, 'x'), 'IO'); // a directory: EISDIR
  });
});

describe('durable writes', () => {
  it('writes atomically, replaces unless exclusive, and leaves no temp file behind', async () => {
    const sub = mkdtempSync(join(dir, 'atomic-'));
    const path = join(sub, 'out.json');
    await writeFileDurably(path, 'one');
    await writeFileDurably(path, 'two', { mode: 0o600 });
    expect(readFileSync(path, 'utf8')).toBe('two');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await rejectsWith(writeFileDurably(path, 'three', { exclusive: true }), 'FILE_EXISTS');
    expect(readFileSync(path, 'utf8')).toBe('two');
    const missing = await rejectsWith(writeFileDurably(join(sub, 'no/such/dir'), 'x'), 'IO');
    // The directory is what is wrong, not the temp file's name ENOENT was about.
    expect(missing.message).toBe(
      `cannot write ${join(sub, 'no/such/dir')}: no directory ${join(sub, 'no/such')} (ENOENT)`,
    );
    const kernel = await rejectsWith(writeFileDurably('/proc/self/vouch.json', 'x'), 'IO');
    expect(kernel.message).toBe('/proc/self is on procfs, a kernel interface, not a directory');
    expect(readdirSync(sub)).toEqual(['out.json']);
    expect(() => requireAbsent([join(sub, 'other'), path])).toThrow(`${path} exists`);
    expect(() => requireAbsent([join(sub, 'other')])).not.toThrow();
  });

  it('creates missing parent directories', async () => {
    const deep = join(dir, 'a', 'b', 'c');
    await makeDirectory(deep);
    await writeFileDurably(join(deep, 'f'), 'x');
    expect(readdirSync(deep)).toEqual(['f']);
  });
});

/**
 * Issue #13: special files never reach a read, and directories are made without a call that
 * can loop. Each case hung before (a FIFO's open, /dev/zero's endless read, mkdir's
 * `recursive` on procfs): the runner bounds each test, and each finishes in milliseconds.
 */
describe('special files', { timeout: 10_000 }, () => {
  const special = mkdtempSync(join(dir, 'special-'));
  const fifo = join(special, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const socketPath = join(special, 'socket');
  let server: Server;

  beforeAll(async () => {
    server = createServer().listen(socketPath);
    await once(server, 'listening');
  });
  afterAll(() => server.close());

  const refusals = [
    ['/dev/zero', 'a character device'],
    ['/dev/null', 'a character device'],
    [fifo, 'a FIFO'],
    [socketPath, 'a socket'],
    [special, 'a directory'],
    ['/proc/self/status', 'on procfs, a kernel interface'],
    ['/sys/kernel/uevent_seqnum', 'on sysfs, a kernel interface'],
  ] as const;

  it.each(refusals)('refuses to read %s: %s (IO)', async (path, what) => {
    const error = await rejectsWith(readFileCapped(path, 1 << 20, 'trust root'), 'IO');
    expect(error.message).toBe(`trust root ${path} is ${what}, not a regular file`);
    await rejectsWith(openRegularFile(path, 'file'), 'IO');
    expect(() => openRegularFileSync(path, 'config')).toThrow(
      `config ${path} is ${what}, not a regular file`,
    );
  });

  it('reads a regular file through the same door, and tells a missing one apart', async () => {
    const path = join(special, 'regular');
    writeFileSync(path, 'data');
    expect(Buffer.from((await readFileCapped(path, 10, 'x')) ?? []).toString()).toBe('data');
    expect(await openRegularFile(join(special, 'absent'), 'x')).toBeUndefined();
    expect(openRegularFileSync(join(special, 'absent'), 'x')).toBeUndefined();
  });

  it.each([
    ['/proc/vouch-test', '/proc is on procfs, a kernel interface, not a directory'],
    ['/proc/self/x/y', '/proc/self is on procfs, a kernel interface, not a directory'],
    ['/sys/vouch-test', '/sys is on sysfs, a kernel interface, not a directory'],
    ['/dev/null/x', '/dev/null is a character device, not a directory'],
    [join(fifo, 'x', 'y'), `${fifo} is a FIFO, not a directory`],
    [fifo, `${fifo} is a FIFO, not a directory`],
  ])('makes no directory %s: %s', async (path, message) => {
    const error = await rejectsWith(makeDirectory(path), 'IO');
    expect(error.message).toBe(message);
  });

  it('makes a directory under a regular file’s name into an error naming the file', async () => {
    const file = join(special, 'plain');
    writeFileSync(file, '');
    const error = await rejectsWith(makeDirectory(join(file, 'a', 'b')), 'IO');
    expect(error.message).toBe(`${file} is a regular file, not a directory`);
  });

  it('replaces no FIFO, socket or directory with a file', async () => {
    for (const path of [fifo, socketPath, special]) {
      const error = await rejectsWith(writeFileDurably(path, 'x'), 'FILE_EXISTS');
      expect(error.message).toMatch(/ is a (FIFO|socket|directory); not replacing it$/);
    }
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(statSync(socketPath).isSocket()).toBe(true);
  });
});

describe('names that are not UTF-8', () => {
  // `café` in Latin-1 and a stray 0xff: bytes no UTF-8 decoder gives back.
  const base = Buffer.from(mkdtempSync(join(dir, 'bytes-')));
  const child = (...name: number[]) => Buffer.concat([base, Buffer.from('/'), Buffer.from(name)]);
  const asText = (bytes: Buffer) => decodeSurrogateEscape(bytes);

  it('reads, writes, lists and makes them by their very bytes', async () => {
    const file = child(0x63, 0x61, 0x66, 0xe9);
    writeFileSync(file, 'latin-1 name');
    expect(Buffer.from((await readFileCapped(asText(file), 100, 'x')) ?? []).toString()).toBe(
      'latin-1 name',
    );
    const out = child(0xff, 0x2e, 0x6a);
    await writeFileDurably(asText(out), 'written');
    expect(readFileSync(out, 'utf8')).toBe('written');
    const deep = Buffer.concat([child(0xfe), Buffer.from('/sub')]);
    await makeDirectory(asText(deep));
    expect(statSync(deep).isDirectory()).toBe(true);
    expect(() => requireAbsent([asText(file)])).toThrow('exists; not replacing it');
    // Nothing went to a name with U+FFFD in it.
    expect(
      readdirSync(base, { encoding: 'buffer' })
        .map((name) => name.toString('hex'))
        .sort(),
    ).toEqual(['636166e9', 'fe', 'ff2e6a']);
  });
});
