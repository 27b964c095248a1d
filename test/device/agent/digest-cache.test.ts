import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HashPool } from '../../../agent/content/pool';
import { merkleLeafSize } from '../../../agent/core/statement';
import {
  CachingDigester,
  cacheFiles,
  DigestCache,
  type DigestCacheOptions,
  maxDeepResultBytes,
} from '../../../agent/device/agent/digest-cache';
import { IdlePool } from '../../../agent/device/agent/idle-pool';
import { sealRecord } from '../../../agent/device/store/sealed';
import * as files from '../../../agent/files';
import { waitFor } from '../../../scripts/lib/services';

// writeFileDurably as it is, counted: a burst of changes is one write.
vi.mock('../../../agent/files', async (original) => {
  const actual = await original<typeof files>();
  return { ...actual, writeFileDurably: vi.fn(actual.writeFileDurably) };
});

const dir = mkdtempSync(join(tmpdir(), 'vouch-digest-cache-'));
const hashing = new IdlePool();
afterAll(async () => {
  await hashing.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A clock ahead of the files' times, so that files written just now count as settled. */
const later = () => Date.now() + 10_000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let stateDir: string;
let fileCount = 0;
beforeEach(() => {
  stateDir = mkdtempSync(join(dir, 'state-'));
  vi.mocked(files.writeFileDurably).mockClear();
});

/** The pool, with the number of times anything was hashed on it. */
function counted(): Pick<IdlePool, 'use'> & { uses: number } {
  const counter = {
    uses: 0,
    use<T>(work: (pool: HashPool) => Promise<T>): Promise<T> {
      counter.uses++;
      return hashing.use(work);
    },
  };
  return counter;
}

async function setUp(options: Partial<DigestCacheOptions> = {}, clock = later) {
  const lines: { level: number; msg: string; file?: string }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  const cache = await DigestCache.load({ stateDir, logger, writeDelayMs: 100, ...options });
  const pool = counted();
  return { cache, pool, digester: new CachingDigester(cache, pool, clock), lines };
}

function newFile(data: Uint8Array | string): string {
  const path = join(dir, `file-${fileCount++}`);
  writeFileSync(path, data);
  return path;
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

function writesOf(name: string): number {
  return vi
    .mocked(files.writeFileDurably)
    .mock.calls.filter(([path]) => path === join(stateDir, name)).length;
}

describe('CachingDigester', () => {
  it('answers an unchanged file from the cache, hashing nothing', async () => {
    const data = new Uint8Array(2 * merkleLeafSize + 3).map((_, i) => i % 199);
    const path = newFile(data);
    const { digester, pool } = await setUp();
    const plain = await digester.hash(path);
    expect(plain).toEqual({ sha256: sha256(data), size: data.length });
    const chunked = await digester.hashChunked(path, merkleLeafSize);
    expect(chunked).toEqual(await hashing.use((p) => p.hashChunked(path, merkleLeafSize)));
    expect(pool.uses).toBe(2);
    expect(await digester.hash(path)).toEqual(plain);
    expect(await digester.hashChunked(path, merkleLeafSize)).toEqual(chunked);
    expect(pool.uses).toBe(2);
    // Other leaf sizes are not kept.
    await digester.hashChunked(path, 4096);
    await digester.hashChunked(path, 4096);
    expect(pool.uses).toBe(4);
  });

  it('hashes again a file touched, rewritten at the same size, or chmod-ed', async () => {
    const path = newFile('first content');
    const { digester, pool } = await setUp();
    expect((await digester.hash(path)).sha256).toBe(sha256('first content'));
    const steps: [string, () => void, string][] = [
      [
        'touched',
        () => utimesSync(path, new Date(), new Date(Date.now() - 60_000)),
        'first content',
      ],
      ['rewritten', () => writeFileSync(path, 'other content'), 'other content'],
      ['chmod-ed', () => chmodSync(path, 0o600), 'other content'],
    ];
    for (const [what, change, content] of steps) {
      // Past one tick of the file system's clock.
      await pause(20);
      change();
      const uses = pool.uses;
      expect((await digester.hash(path)).sha256, what).toBe(sha256(content));
      expect(pool.uses, what).toBe(uses + 1);
      expect((await digester.hash(path)).sha256, what).toBe(sha256(content));
      expect(pool.uses, what).toBe(uses + 1);
    }
  });

  it('keeps nothing of a file written within the last 2 s: a write after could keep its times', async () => {
    const path = newFile('just written');
    const { digester, pool } = await setUp({}, Date.now);
    await digester.hash(path);
    await digester.hash(path);
    expect(pool.uses).toBe(2);
  });

  it('keeps nothing of a file changed while it was hashed', async () => {
    const size = 32 * 2 ** 20;
    const path = newFile(new Uint8Array(size));
    const { cache, digester, pool } = await setUp();
    for (const [field, hash] of [
      ['sha256', (onProgress: () => void) => digester.hash(path, onProgress)],
      [
        'merkle',
        (onProgress: () => void) => digester.hashChunked(path, merkleLeafSize, onProgress),
      ],
    ] as const) {
      const before = statSync(path, { bigint: true });
      let changed = false;
      await hash(() => {
        if (changed) return;
        changed = true;
        const fd = openSync(path, 'r+');
        writeSync(fd, Buffer.from([1]), 0, 1, 0);
        closeSync(fd);
      });
      expect(changed).toBe(true);
      expect(cache.file(before)?.[field] ?? null, field).toBeNull();
      const uses = pool.uses;
      await hash(() => {});
      await hash(() => {});
      // Hashed again once, then kept.
      expect(pool.uses, field).toBe(uses + 1);
    }
  });

  it('fails a FIFO at once, as the pool does, and a missing file', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const { digester, pool } = await setUp();
    await expect(digester.hash(fifo)).rejects.toMatchObject({
      code: 'IO',
      message: `file ${fifo} is a FIFO, not a regular file`,
    });
    await expect(digester.hash(join(dir, 'missing'))).rejects.toMatchObject({ code: 'IO' });
    expect(pool.uses).toBe(0);
  });
});

describe('DigestCache', () => {
  it('is written once for a burst of changes, and read back after a restart', async () => {
    const paths = ['one', 'two', 'three'].map(newFile);
    const first = await setUp();
    await Promise.all(paths.map((path) => first.digester.hash(path)));
    expect(first.cache.putDeepResult(`sha256:${'a'.repeat(64)}`, { matches: true })).toBe(true);
    expect(writesOf(cacheFiles.digests)).toBe(0);
    await waitFor('the write', async () => writesOf(cacheFiles.deep) === 1, 5000);
    await pause(150);
    expect(writesOf(cacheFiles.digests)).toBe(1);
    expect(writesOf(cacheFiles.deep)).toBe(1);

    const restarted = await setUp();
    expect(await Promise.all(paths.map((path) => restarted.digester.hash(path)))).toEqual(
      ['one', 'two', 'three'].map((data) => ({ sha256: sha256(data), size: data.length })),
    );
    expect(restarted.pool.uses).toBe(0);
    expect(restarted.cache.deepResult(`sha256:${'a'.repeat(64)}`)).toMatchObject({
      result: { matches: true },
      at: expect.any(Number),
    });
    expect(restarted.lines).toEqual([]);
  });

  it('writes at once on flush()', async () => {
    const { cache, digester } = await setUp({ writeDelayMs: 60_000 });
    await digester.hash(newFile('flushed'));
    await cache.flush();
    expect(writesOf(cacheFiles.digests)).toBe(1);
    expect(JSON.parse(readFileSync(join(stateDir, cacheFiles.digests), 'utf8'))).toMatchObject({
      format: 'vouch-digest-cache/v1',
      files: [{ sha256: sha256('flushed'), merkle: null, size: 7 }],
    });
  });

  it('ignores a damaged or unreadable cache file with a log line, starting empty', async () => {
    const path = newFile('damaged');
    // No write of its own comes between a damage and the next load.
    const slow = { writeDelayMs: 60_000 };
    const first = await setUp(slow);
    await first.digester.hash(path);
    await first.cache.flush();
    const intact = readFileSync(join(stateDir, cacheFiles.digests), 'utf8');
    const cases: [string, () => void, RegExp][] = [
      [
        'not JSON',
        () => writeFileSync(join(stateDir, cacheFiles.digests), 'not json'),
        /is not valid JSON/,
      ],
      [
        'a flipped digit',
        () =>
          writeFileSync(join(stateDir, cacheFiles.digests), intact.replace(/"size":7/, '"size":8')),
        /does not match its own digest/,
      ],
      [
        'sealed, but not a cache',
        () =>
          writeFileSync(
            join(stateDir, cacheFiles.digests),
            sealRecord({ format: 'vouch-digest-cache/v1', files: [{ dev: 'x' }] }),
          ),
        /files\.0/,
      ],
      [
        'a directory',
        () => {
          rmSync(join(stateDir, cacheFiles.digests));
          mkdirSync(join(stateDir, cacheFiles.digests));
        },
        /is a directory, not a regular file/,
      ],
    ];
    for (const [what, damage, message] of cases) {
      damage();
      const { digester, pool, lines } = await setUp(slow);
      expect(lines, what).toMatchObject([
        {
          level: 40,
          file: join(stateDir, cacheFiles.digests),
          msg: expect.stringMatching(message),
        },
      ]);
      expect(lines[0]?.msg, what).toMatch(/^ignoring the digest cache .*, starting without it: /);
      expect((await digester.hash(path)).sha256).toBe(sha256('damaged'));
      expect(pool.uses, what).toBe(1);
    }
  });

  it('drops the least recently used beyond its caps', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map(newFile) as [string, string, string];
    const { cache, digester, pool } = await setUp({ maxFiles: 2, maxImages: 2 });
    await digester.hash(a);
    await digester.hash(b);
    await digester.hash(a); // a is used after b
    await digester.hash(c); // b goes
    expect(pool.uses).toBe(3);
    await digester.hash(a);
    await digester.hash(c);
    expect(pool.uses).toBe(3);
    await cache.flush();
    const written = JSON.parse(readFileSync(join(stateDir, cacheFiles.digests), 'utf8'));
    expect(written.files.map((file: { sha256: string }) => file.sha256)).toEqual([
      sha256('a'),
      sha256('c'),
    ]);

    const image = (n: number) => `sha256:${String(n).repeat(64)}`;
    for (const n of [1, 2]) cache.putDeepResult(image(n), { n });
    cache.deepResult(image(1));
    cache.putDeepResult(image(3), { n: 3 });
    expect([1, 2, 3].map((n) => cache.deepResult(image(n))?.result)).toEqual([
      { n: 1 },
      undefined,
      { n: 3 },
    ]);
    // A result over the cap is not kept; nor is anything but JSON under an image ID.
    expect(cache.putDeepResult(image(4), { big: 'x'.repeat(maxDeepResultBytes) })).toBe(false);
    expect(cache.deepResult(image(4))).toBeUndefined();
    expect(() => cache.putDeepResult('nginx:latest', {})).toThrow('not an image ID');
  });
});
