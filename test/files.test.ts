import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
