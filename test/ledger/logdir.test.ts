import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import { generateKey, verifierString } from '../../agent/core/keys';
import { emptyRoot } from '../../agent/core/merkle';
import { appendEntries, initLog, publishLog, readCheckpoint, readConfig } from '../../agent/ledger';
import { entries, tempLog, testOrigin } from '../helpers/log';

async function rejection(promise: Promise<unknown>): Promise<VouchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

describe('log directory', () => {
  it('is created with its config and a signed empty checkpoint', async () => {
    const { dir, key } = await tempLog();
    expect((await readdir(dir)).sort()).toEqual([
      'entries',
      'hashes',
      'log.json',
      'public',
      'state.json',
    ]);
    const config = await readConfig(dir);
    expect(config.origin).toBe(testOrigin);
    expect(config.key.raw).toEqual(key.raw);
    expect(verifierString(config.key)).toMatch(/^log\.example\.org\/vouch\+[0-9a-f]{8}\+/);
    const { checkpoint } = await readCheckpoint(dir, config);
    expect(checkpoint).toEqual({ origin: testOrigin, size: 0, root: emptyRoot, extensions: [] });
  });

  it('is created only in an absent or empty directory, for a valid origin', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'vouch-log-'));
    const { key } = generateKey();
    await mkdir(join(parent, 'empty'));
    await initLog(join(parent, 'empty'), 'a.example/log', 'k', key);
    expect((await rejection(initLog(join(parent, 'empty'), 'a.example/log', 'k', key))).code).toBe(
      'FILE_EXISTS',
    );
    for (const origin of ['', 'has space', 'a+b']) {
      expect(
        (await rejection(initLog(join(parent, `o${origin.length}`), origin, 'k', key))).code,
      ).toBe('USAGE');
    }
  });

  it('is recognised by its log.json only', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'vouch-log-'));
    expect((await rejection(readConfig(parent))).code).toBe('LOG_INVALID');
    await writeFile(join(parent, 'log.json'), '{"origin":"x"');
    expect((await rejection(readConfig(parent))).code).toBe('LOG_INVALID');
    await writeFile(join(parent, 'log.json'), '{"origin":"x","verifier":"y","key":"k","extra":1}');
    expect((await rejection(readConfig(parent))).code).toBe('LOG_INVALID');
  });

  it('lets one command at a time change the log, and takes over a dead holder’s lock', async () => {
    const { dir, key } = await tempLog();
    await appendEntries(dir, entries(0, 2000));
    const results = await Promise.allSettled([
      publishLog(dir, key),
      appendEntries(dir, entries(5000, 5001)),
    ]);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected.map((r) => r.reason.code)).toEqual(['LOG_LOCKED']);

    // A pid that cannot be running (beyond the kernel's pid_max).
    await writeFile(join(dir, 'lock'), '99999999\n');
    await appendEntries(dir, entries(6000, 6001));
    await expect(readFile(join(dir, 'lock'))).rejects.toThrow();
  });
});
