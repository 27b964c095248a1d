import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import { hashLeaf } from '../../agent/core/merkle';
import { appendEntries, readEntries, readState } from '../../agent/ledger';
import { entries, tempLog } from '../helpers/log';

async function rejection(promise: Promise<unknown>): Promise<VouchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

async function files(dir: string): Promise<string[]> {
  const names = ['state.json', 'hashes', 'entries/0', 'entries/1'];
  return Promise.all(
    names.map((name) =>
      readFile(join(dir, name)).then(
        (b) => b.toString('hex'),
        () => '-',
      ),
    ),
  );
}

describe('appendEntries', () => {
  it('commits entries with their leaf hashes, across staged bundles', async () => {
    const { dir } = await tempLog();
    const first = await appendEntries(dir, entries(0, 200));
    expect(first).toMatchObject({ first: 0, size: 200 });
    const second = await appendEntries(dir, entries(200, 300));
    expect(second.first).toBe(200);
    expect(second.leafHashes[0]).toEqual(hashLeaf(Buffer.from('entry 200')));
    expect(await readState(dir)).toBe(300);
    expect((await readEntries(dir, 250, 260)).map((e) => Buffer.from(e).toString())).toEqual(
      entries(250, 260).map((e) => e.toString()),
    );
    expect((await stat(join(dir, 'hashes'))).size).toBe(300 * 32);
  });

  it.each([
    [
      'a duplicate of a logged entry',
      [Buffer.from('new'), Buffer.from('entry 1')],
      'ENTRY_DUPLICATE',
    ],
    ['the same entry twice', [Buffer.from('x'), Buffer.from('x')], 'ENTRY_DUPLICATE'],
    ['an entry over 65535 bytes', [Buffer.from('ok'), Buffer.alloc(65_536)], 'PAYLOAD_TOO_LARGE'],
  ])('appends nothing when a batch has %s', async (_what, batch, code) => {
    const { dir } = await tempLog();
    await appendEntries(dir, entries(0, 3));
    const before = await files(dir);
    expect((await rejection(appendEntries(dir, batch))).code).toBe(code);
    expect(await files(dir)).toEqual(before);
  });

  it('takes an entry of exactly 65535 bytes', async () => {
    const { dir } = await tempLog();
    await appendEntries(dir, [Buffer.alloc(65_535, 1)]);
    expect((await readEntries(dir, 0, 1))[0]).toHaveLength(65_535);
  });

  it('cuts off what an interrupted append left beyond the commit record', async () => {
    const { dir } = await tempLog();
    await appendEntries(dir, entries(0, 10));
    // A crash after writing entries and hashes, before state.json was replaced.
    await appendFile(join(dir, 'entries', '0'), Buffer.from([0, 5, 1, 2]));
    await appendFile(join(dir, 'hashes'), Buffer.alloc(40, 9));
    await appendEntries(dir, entries(10, 12));
    expect(await readState(dir)).toBe(12);
    expect((await readEntries(dir, 0, 12)).map((e) => Buffer.from(e).toString())).toEqual(
      entries(0, 12).map((e) => e.toString()),
    );
    expect((await stat(join(dir, 'hashes'))).size).toBe(12 * 32);
    // An interrupted entry is not a duplicate of anything.
    await appendEntries(dir, [Buffer.from([1, 2])]);
  });

  it('refuses a log whose committed entries are gone', async () => {
    const { dir } = await tempLog();
    await appendEntries(dir, entries(0, 10));
    await writeFile(join(dir, 'state.json'), '{"size":11}');
    expect((await rejection(appendEntries(dir, entries(20, 21)))).code).toBe('LOG_INVALID');
    await writeFile(join(dir, 'state.json'), '{"size":-1}');
    expect((await rejection(appendEntries(dir, entries(20, 21)))).code).toBe('LOG_INVALID');
  });
});
