import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  makeDirectory,
  readExistingFile,
  readFileCapped,
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
      const read = readFileCapped(fifo, cap, 'x');
      if (fits) expect(Buffer.from((await read) ?? []).equals(data)).toBe(true);
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
    await rejectsWith(writeFileDurably(join(sub, 'no/such/dir'), 'x'), 'IO');
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
