import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  appendFileSync,
  closeSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool, plannedPool, startHashWorker } from '../../../agent/content/pool';
import { VouchError } from '../../../agent/core/errors';
import { merkleLeafSize } from '../../../agent/core/statement';
import { planHashing, readProfile } from '../../../hw';

const dir = mkdtempSync(join(tmpdir(), 'vouch-pool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const chunkSize = 4096;
let pool: HashPool;
beforeAll(() => {
  // Small chunks so that the properties cross many chunk boundaries quickly.
  pool = new HashPool({ workers: 3, chunkSize, inFlightBytes: 4 * chunkSize });
});
afterAll(() => pool.close());

/** A file of `size` zero bytes that takes no disk space (a hole). */
function sparseFile(name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, '');
  truncateSync(path, size);
  return path;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** RFC 6962 §2.1 Merkle tree hash, written out with @noble/hashes as an independent oracle. */
function merkleTreeHash(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return nobleSha256(new Uint8Array(0));
  if (leaves.length === 1) return nobleSha256(concat([0], leaves[0] as Uint8Array));
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  const left = merkleTreeHash(leaves.slice(0, k));
  const right = merkleTreeHash(leaves.slice(k));
  return nobleSha256(concat([1], left, right));
}

function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function chunksOf(data: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += size) chunks.push(data.subarray(at, at + size));
  return chunks;
}

/** Sizes around chunk boundaries (0, exact multiples, one over, one under) and in between. */
const sizes = fc.oneof(
  fc.constantFrom(0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3 * chunkSize + 1),
  fc.integer({ min: 0, max: 6 * chunkSize }),
);
const input = sizes.chain((size) =>
  fc.record({
    data: fc.uint8Array({ minLength: size, maxLength: size }),
    // How a stream delivers it: piece sizes, cycled.
    pieces: fc.array(fc.integer({ min: 1, max: 2 * chunkSize + 3 }), {
      minLength: 1,
      maxLength: 5,
    }),
  }),
);

function pieces(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length] as number;
    out.push(data.slice(at, at + size));
    at += size;
  }
  return out;
}

describe('HashPool', () => {
  it('hashes streams like one-shot node:crypto, whatever the size and the pieces', async () => {
    await fc.assert(
      fc.asyncProperty(input, async ({ data, pieces: split }) => {
        const digest = await pool.hash(Readable.from(pieces(data, split)));
        expect(digest).toEqual({ sha256: sha256(data), size: data.length });
      }),
      { numRuns: 60 },
    );
  });

  it('hashes files like one-shot node:crypto, several at once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(input, { minLength: 1, maxLength: 5 }), async (inputs) => {
        const files = inputs.map(({ data }, i) => {
          const path = join(dir, `file-${i}`);
          writeFileSync(path, data);
          return path;
        });
        const digests = await Promise.all(files.map((path) => pool.hash(path)));
        expect(digests).toEqual(
          inputs.map(({ data }) => ({ sha256: sha256(data), size: data.length })),
        );
      }),
      { numRuns: 25 },
    );
  });

  it('hashes a file alone (read ahead) as beside others (read in the worker)', async () => {
    for (const size of [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 5 * chunkSize + 7]) {
      const data = new Uint8Array(size).map((_, i) => (i * 31) % 256);
      const path = join(dir, `modes-${size}`);
      writeFileSync(path, data);
      const expected = { sha256: sha256(data), size };
      expect(await pool.hash(path)).toEqual(expected);
      const together = await Promise.all([path, path, path, path].map((p) => pool.hash(p)));
      expect(together).toEqual(Array(4).fill(expected));
    }
  });

  it('reports progress of a file up to its size', async () => {
    const path = sparseFile('progress', 40 * 2 ** 20);
    const seen: number[] = [];
    const digest = await pool.hash(path, (bytes) => seen.push(bytes));
    expect(seen.length).toBeGreaterThan(1);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(digest.size);
    const chunked: number[] = [];
    const tree = await pool.hashChunked(path, 2 ** 16, (bytes) => chunked.push(bytes));
    expect(chunked.length).toBeGreaterThan(1);
    expect(chunked.at(-1)).toBe(tree.size);
  });

  it('fails a file job whose progress callback throws, as it fails a stream job', async () => {
    const path = sparseFile('progress-broken', 20 * 2 ** 20);
    const broken = () => {
      throw new Error('progress bar broke');
    };
    await expect(pool.hash(path, broken)).rejects.toThrow('progress bar broke');
    await expect(pool.hashChunked(path, 2 ** 16, broken)).rejects.toThrow('progress bar broke');
    const stream = Readable.from([new Uint8Array(10)]);
    await expect(pool.hash(stream, broken)).rejects.toThrow('progress bar broke');
  });

  it('hashes a file the caller opened, whatever its path names meanwhile, and leaves it open', async () => {
    const path = join(dir, 'opened');
    const data = new Uint8Array(3 * chunkSize + 5).map((_, i) => i % 17);
    writeFileSync(path, data);
    const handle = await open(path);
    try {
      // Another file takes the name: the digests are still of the one that was opened.
      writeFileSync(join(dir, 'opened-other'), 'other');
      renameSync(join(dir, 'opened-other'), path);
      const file = { path, handle };
      expect(await pool.hash(file)).toEqual({ sha256: sha256(data), size: data.length });
      expect(await pool.hashChunked(file, chunkSize)).toMatchObject({
        root: Buffer.from(merkleTreeHash(chunksOf(data, chunkSize))).toString('hex'),
        size: data.length,
      });
      expect((await handle.stat()).size).toBe(data.length);
    } finally {
      await handle.close();
    }
  });

  it('fails a chunked digest of a file that changes while it is hashed', async () => {
    const leaf = 4096;
    for (const change of [
      (path: string) => truncateSync(path, 3 * leaf),
      (path: string) => appendFileSync(path, new Uint8Array(10)),
    ]) {
      const path = join(dir, 'changing');
      writeFileSync(path, new Uint8Array(2 ** 22).fill(7));
      let changed = false;
      const hashing = pool.hashChunked(path, leaf, () => {
        if (!changed) change(path);
        changed = true;
      });
      await expect(hashing).rejects.toMatchObject({
        code: 'BAD_DATA',
        message: expect.stringContaining(`${path} changed while it was being hashed`),
      });
    }
  });

  it('computes chunked digests as the RFC 6962 root of per-chunk leaves, from files and streams', async () => {
    await fc.assert(
      fc.asyncProperty(input, async ({ data, pieces: split }) => {
        const path = join(dir, 'chunked');
        writeFileSync(path, data);
        const expected = {
          root: Buffer.from(merkleTreeHash(chunksOf(data, chunkSize))).toString('hex'),
          leafSize: chunkSize,
          chunks: Math.ceil(data.length / chunkSize),
          size: data.length,
        };
        expect(await pool.hashChunked(path, chunkSize)).toEqual(expected);
        expect(await pool.hashChunked(Readable.from(pieces(data, split)), chunkSize)).toEqual(
          expected,
        );
      }),
      { numRuns: 40 },
    );
  });

  it('starts a worker when there is work for it: one for one plain digest, all for a chunked one', async () => {
    const lazy = new HashPool({ workers: 3, chunkSize: 1024, inFlightBytes: 12 * 1024 });
    try {
      const data = new Uint8Array(10_000).map((_, i) => i % 7);
      expect(lazy.threads).toHaveLength(1);
      await lazy.hash(Readable.from([data]));
      await lazy.hash(Readable.from([data]));
      expect(lazy.threads).toHaveLength(1);
      // Two at once: the first worker is busy, a second one starts.
      const a = heldStream(data);
      const b = heldStream(data);
      const both = Promise.all([lazy.hash(a.stream), lazy.hash(b.stream)]);
      await Promise.all([a.started, b.started]);
      expect(lazy.threads).toHaveLength(2);
      a.release();
      b.release();
      expect((await both).map((digest) => digest.sha256)).toEqual([sha256(data), sha256(data)]);
      const file = join(dir, 'lazy');
      writeFileSync(file, new Uint8Array(64 * 1024));
      await lazy.hashChunked(file, 1024);
      expect(lazy.threads).toHaveLength(3);
    } finally {
      await lazy.close();
    }
    // Asked for, more boot with the pool (never more than `workers`).
    for (const [warm, booted] of [
      [2, 2],
      [8, 3],
    ] as const) {
      const warmed = new HashPool({ workers: 3, chunkSize: 1024, inFlightBytes: 12 * 1024, warm });
      expect(warmed.threads).toHaveLength(booted);
      await warmed.close();
    }
  });

  it('plannedPool: sized by the plan for this machine and the files given', async () => {
    const file = join(dir, 'planned');
    const data = new Uint8Array(3 * merkleLeafSize + 5).map((_, i) => i % 251);
    writeFileSync(file, data);
    const plan = planHashing(await readProfile({ root: '/', paths: [dir] }));
    const planned = await plannedPool([file, file, file], { minWorkers: 2 });
    try {
      // The booted worker is the pool's own, plus one per file up to the plan (at least 2).
      expect(planned.threads).toHaveLength(Math.min(3, Math.max(2, plan.workers)));
      expect(planned.plan).toMatchObject({ workers: plan.workers, chunkSize: plan.chunkSize });
      expect((await planned.hash(file)).sha256).toBe(sha256(data));
      expect((await planned.hashChunked(file, merkleLeafSize)).chunks).toBe(4);
    } finally {
      await planned.close();
    }
  });

  it('adopts a worker booted before it, and replaces one that stopped meanwhile', async () => {
    const data = new Uint8Array(5000).map((_, i) => i % 13);
    const booted = startHashWorker();
    const adopting = new HashPool({ workers: 1, chunkSize: 1024, inFlightBytes: 4096 }, booted);
    try {
      expect(adopting.threads).toEqual([booted]);
      expect((await adopting.hash(Readable.from([data]))).sha256).toBe(sha256(data));
    } finally {
      await adopting.close();
    }
    // Stopped before the pool exists: no crash, no job waiting on it — a new worker serves.
    const gone = startHashWorker();
    await gone.terminate();
    const replacing = new HashPool({ workers: 1, chunkSize: 1024, inFlightBytes: 4096 }, gone);
    try {
      expect(replacing.threads).toHaveLength(1);
      expect(replacing.threads[0]).not.toBe(gone);
      expect((await replacing.hash(Readable.from([data]))).sha256).toBe(sha256(data));
    } finally {
      await replacing.close();
    }
  });

  it('reads files in 64 KiB pieces whatever the leaf size: smaller, not dividing, larger', async () => {
    // Chunks of 1 MiB: a worker reading beside other jobs (and every chunked digest) reads
    // 64 KiB at a time, which the leaves above (4 KiB, 1 MiB) divide or equal.
    const sized = new HashPool({ workers: 2, chunkSize: 2 ** 20, inFlightBytes: 4 * 2 ** 20 });
    try {
      const data = new Uint8Array(3 * 100_000 + 12_345).map((_, i) => (i * 7) % 253);
      const path = join(dir, 'leaf-sizes');
      writeFileSync(path, data);
      for (const leafSize of [777, 65_535, 65_536, 100_000, 2 ** 20]) {
        const root = Buffer.from(merkleTreeHash(chunksOf(data, leafSize))).toString('hex');
        expect(await sized.hashChunked(path, leafSize)).toEqual({
          root,
          leafSize,
          chunks: Math.ceil(data.length / leafSize),
          size: data.length,
        });
      }
      const expected = { sha256: sha256(data), size: data.length };
      const together = await Promise.all([path, path, path].map((p) => sized.hash(p)));
      expect(together).toEqual(Array(3).fill(expected));
    } finally {
      await sized.close();
    }
  });

  it('gives the RFC 6962 empty-tree hash for an empty input', async () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect((await pool.hashChunked(empty, chunkSize)).root).toBe(sha256(new Uint8Array(0)));
  });

  it('reports unreadable files and failing streams as IO errors', async () => {
    const missing = pool.hash(join(dir, 'missing'));
    await expect(missing).rejects.toThrow(VouchError);
    await expect(missing).rejects.toMatchObject({ code: 'IO' });
    // What is not a regular file is refused before a worker reads it (a FIFO would block
    // it, a device never end): alone, beside another job, and for a chunked digest.
    const unreadable = {
      code: 'IO',
      message: `file ${dir} is a directory, not a regular file`,
    };
    await expect(pool.hash(dir)).rejects.toMatchObject(unreadable);
    const both = await Promise.all([pool.hash(dir), pool.hash(dir)].map(outcome));
    expect(both).toEqual([
      { error: expect.objectContaining(unreadable) },
      { error: expect.objectContaining(unreadable) },
    ]);
    await expect(pool.hashChunked(dir, chunkSize)).rejects.toMatchObject(unreadable);
    await expect(pool.hash('/dev/zero')).rejects.toMatchObject({
      code: 'IO',
      message: 'file /dev/zero is a character device, not a regular file',
    });
    // A read that fails in a worker (here EISDIR, on a descriptor the pool no longer opens)
    // comes back as its system message.
    const worker = startHashWorker();
    const fd = openSync(dir, 'r');
    try {
      await once(worker, 'message'); // ready
      worker.postMessage({ op: 'file', job: 7, fd, chunkSize, readAhead: false });
      const [reply] = await once(worker, 'message');
      expect(reply).toMatchObject({ op: 'failed', job: 7, reason: 'read' });
      expect(reply.message).toMatch(/^EISDIR/);
    } finally {
      await worker.terminate();
      closeSync(fd);
    }
    async function* failing() {
      yield new Uint8Array(chunkSize * 2);
      throw new Error('connection reset');
    }
    await expect(pool.hash(failing())).rejects.toMatchObject({
      code: 'IO',
      message: 'cannot read the stream: connection reset',
    });
    await expect(pool.hashChunked(failing(), chunkSize)).rejects.toMatchObject({ code: 'IO' });
    // The pool is still fine afterwards.
    expect((await pool.hash(Readable.from([Buffer.from('abc')]))).sha256).toBe(
      sha256(Buffer.from('abc')),
    );
  });
});

/** The outcome of a job, with a handler attached at once (no unhandled rejection). */
function outcome(job: Promise<unknown>): Promise<{ digest: unknown } | { error: unknown }> {
  return job.then(
    (digest) => ({ digest }),
    (error: unknown) => ({ error }),
  );
}

/** A progress callback that does `act` at the first call only. */
function atFirstProgress(act: () => void): () => void {
  let done = false;
  return () => {
    if (!done) act();
    done = true;
  };
}

/** A stream that yields `first` bytes, says when asked for more, and waits for `release()`. */
function heldStream(data: Uint8Array, first = 1000) {
  let pulled!: () => void;
  let release!: () => void;
  const started = new Promise<void>((resolve) => {
    pulled = resolve;
  });
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  async function* stream() {
    yield data.subarray(0, first);
    pulled();
    await gate;
    yield data.subarray(first);
  }
  return { stream: stream(), started, release };
}

describe('merkle-sha256-1mib: hashChunked with the fixed 1 MiB leaves', () => {
  const MiB = 2 ** 20;
  /** Byte i is i mod 251: no chunk equals another. */
  const pattern = (size: number) => Uint8Array.from({ length: size }, (_, i) => i % 251);
  const write = (data: Uint8Array) => {
    const path = join(dir, `merkle-${data.length}`);
    writeFileSync(path, data);
    return path;
  };

  // Computed with Python's hashlib over the same bytes (RFC 6962 §2.1 written out); the
  // 1-byte root is also `printf '\x00\x00' | openssl dgst -sha256` (one leaf: 0x00 ‖ 0x00).
  it.each([
    [0, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    [1, '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7'],
    [MiB, 'f4e53704c07aef05b5b12a89d6c1e54292fa7d9d8c3ee431c40b6f6ef6d19280'],
    [MiB + 1, 'c782cd77b0f9139f9d7fab306f384a6cab7f6c65426252d0f67ef5aadffcc3f3'],
    [3 * MiB + 5, '19cc3f2db5bad6ffe7c2538ca892fbee5afa64cce958b830b60bea68a155d4a4'],
  ])('%i bytes: the known root, whatever the pool’s own chunk size', async (size, root) => {
    const data = pattern(size);
    const expected = { root, leafSize: MiB, chunks: Math.ceil(size / MiB), size };
    expect(merkleLeafSize).toBe(MiB);
    // The shared pool reads plain digests in 4 KiB chunks: the leaf size is the caller's.
    expect(await pool.hashChunked(write(data), merkleLeafSize)).toEqual(expected);
    expect(Buffer.from(merkleTreeHash(chunksOf(data, MiB))).toString('hex')).toBe(root);
  });

  it('equals the independent computation for random sizes and contents', async () => {
    const sized = new HashPool({ workers: 2, chunkSize: MiB, inFlightBytes: 8 * MiB });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.integer({ min: 0, max: 5 * MiB }),
            fc.constantFrom(MiB - 1, 2 * MiB, 4 * MiB + 1),
          ),
          fc.integer(),
          async (size, seed) => {
            // xorshift32 from the seed: megabytes of varied bytes, quickly.
            const data = new Uint8Array(size);
            let x = seed | 1;
            for (let i = 0; i < size; i++) {
              x ^= x << 13;
              x ^= x >>> 17;
              x ^= x << 5;
              data[i] = x & 0xff;
            }
            const root = Buffer.from(merkleTreeHash(chunksOf(data, MiB))).toString('hex');
            expect((await sized.hashChunked(write(data), merkleLeafSize)).root).toBe(root);
          },
        ),
        { numRuns: 12 },
      );
    } finally {
      await sized.close();
    }
  });
});

describe('HashPool when a worker dies', () => {
  const data = new Uint8Array(50_000).map((_, i) => i % 251);

  /** After a failure, the pool still hashes (a new worker took the dead one's place). */
  async function expectStillHashing(pool: HashPool): Promise<void> {
    expect(await pool.hash(Readable.from([data]))).toEqual({
      sha256: sha256(data),
      size: data.length,
    });
  }

  it('fails the job of a worker that crashed, replaces it, and keeps the other job going', async () => {
    const crashy = new HashPool({ workers: 2, chunkSize: 1024, inFlightBytes: 8192 });
    try {
      const a = heldStream(data);
      const b = heldStream(data);
      const jobs = [crashy.hash(a.stream), crashy.hash(b.stream)].map(outcome);
      await Promise.all([a.started, b.started]);
      const [first, second] = crashy.threads;
      // An uncaught exception in the worker: it rejects what it does not understand.
      first?.postMessage({ op: 'explode' });
      await new Promise((resolve) => first?.once('exit', resolve));
      a.release();
      b.release();
      const outcomes = await Promise.all(jobs);
      const failed = outcomes.filter((outcome) => 'error' in outcome);
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ error: { code: 'WORKER_FAILED' } });
      expect((failed[0] as { error: Error }).error.message).toContain('unknown request');
      expect(outcomes.find((outcome) => 'digest' in outcome)).toEqual({
        digest: { sha256: sha256(data), size: data.length },
      });
      // A new thread took the dead one's place; the survivor is still there.
      expect(crashy.threads).toHaveLength(2);
      expect(crashy.threads).not.toContain(first);
      expect(crashy.threads).toContain(second);
      const again = await Promise.all([1, 2, 3].map(() => crashy.hash(Readable.from([data]))));
      expect(again.map((digest) => digest.sha256)).toEqual(Array(3).fill(sha256(data)));
    } finally {
      await crashy.close();
    }
  });

  it('fails jobs of a terminated worker — plain and chunked — instead of hanging', async () => {
    const crashy = new HashPool({ workers: 1, chunkSize: 1024, inFlightBytes: 4096 });
    try {
      const plain = heldStream(data);
      const plainJob = outcome(crashy.hash(plain.stream));
      await plain.started;
      await crashy.threads[0]?.terminate();
      plain.release();
      expect(await plainJob).toMatchObject({ error: { code: 'WORKER_FAILED' } });

      // Asked for more after 3000 bytes: leaves 0 and 1 went to the (new) worker.
      const chunked = heldStream(data, 3000);
      const chunkedJob = outcome(crashy.hashChunked(chunked.stream, 1024));
      await chunked.started;
      await crashy.threads[0]?.terminate();
      chunked.release();
      expect(await chunkedJob).toMatchObject({ error: { code: 'WORKER_FAILED' } });

      await expectStillHashing(crashy);
    } finally {
      await crashy.close();
    }
  });

  it('fails the file jobs of a terminated worker — plain and chunked — instead of hanging', async () => {
    const path = sparseFile('sparse-1g', 2 ** 30);
    const crashy = new HashPool({ workers: 2, chunkSize: 2 ** 20, inFlightBytes: 8 * 2 ** 20 });
    try {
      // Stopped at the job's first progress: the worker is still reading (a GiB to go).
      const stopFirstWorker = () => atFirstProgress(() => void crashy.threads[0]?.terminate());
      const plain = outcome(crashy.hash(path, stopFirstWorker()));
      expect(await plain).toMatchObject({ error: { code: 'WORKER_FAILED' } });
      const chunked = outcome(crashy.hashChunked(path, 2 ** 20, stopFirstWorker()));
      expect(await chunked).toMatchObject({ error: { code: 'WORKER_FAILED' } });
      await expectStillHashing(crashy);
    } finally {
      await crashy.close();
    }
  });

  it('closes a file whose worker crashed only once that worker exited', async () => {
    const path = sparseFile('sparse-crash', 2 ** 30);
    const crashy = new HashPool({ workers: 1, chunkSize: 2 ** 20, inFlightBytes: 4 * 2 ** 20 });
    try {
      // Alone, the file is read ahead: between reads the worker takes the message that
      // kills it. 'error' comes at once, 'exit' once its read in flight ended.
      const [first] = crashy.threads;
      let exited = false;
      first?.once('exit', () => {
        exited = true;
      });
      const crash = atFirstProgress(() => first?.postMessage({ op: 'explode' }));
      const job = outcome(crashy.hash(path, crash));
      expect(await job).toMatchObject({ error: { code: 'WORKER_FAILED' } });
      expect(exited).toBe(true);
    } finally {
      await crashy.close();
    }
  });

  it('fails running jobs when closed, and refuses new ones', async () => {
    const closing = new HashPool({ workers: 1, chunkSize: 1024, inFlightBytes: 4096 });
    const held = heldStream(data);
    const job = outcome(closing.hash(held.stream));
    await held.started;
    await closing.close();
    held.release();
    expect(await job).toMatchObject({
      error: { code: 'INTERNAL', message: 'the hash pool was closed' },
    });
    await expect(closing.hash(Readable.from([data]))).rejects.toMatchObject({ code: 'INTERNAL' });

    // A file being read by its worker: the job fails too, it does not wait for the file.
    const path = sparseFile('sparse-closed', 2 ** 30);
    const closingFiles = new HashPool({
      workers: 2,
      chunkSize: 2 ** 20,
      inFlightBytes: 4 * 2 ** 20,
    });
    let closed: Promise<void> | undefined;
    const fileJob = outcome(
      closingFiles.hash(path, () => {
        closed ??= closingFiles.close();
      }),
    );
    expect(await fileJob).toMatchObject({
      error: { code: 'INTERNAL', message: 'the hash pool was closed' },
    });
    await closed;

    // A chunked digest under way: it fails as closed, not as leaves missing.
    const chunking = new HashPool({ workers: 2, chunkSize: 2 ** 20, inFlightBytes: 4 * 2 ** 20 });
    let closedChunking: Promise<void> | undefined;
    const chunkedJob = outcome(
      chunking.hashChunked(path, 2 ** 20, () => {
        closedChunking ??= chunking.close();
      }),
    );
    expect(await chunkedJob).toMatchObject({
      error: { code: 'INTERNAL', message: 'the hash pool was closed' },
    });
    await closedChunking;

    // Closed while a chunked digest opened its file: no worker starts for it after close().
    const opening = new HashPool({ workers: 3, chunkSize: 1024, inFlightBytes: 4096 });
    const openingJob = outcome(opening.hashChunked(path, 2 ** 20));
    await opening.close();
    expect(await openingJob).toMatchObject({
      error: { code: 'INTERNAL', message: 'the hash pool was closed' },
    });
    expect(opening.threads).toHaveLength(1);
  });
});

describe('HashPool memory', () => {
  // ≈ 3 s of hashing at SHA-NI speed; minutes allowed for a loaded CI machine.
  it('hashes a 4 GiB sparse file with RSS growing by far less than the file', {
    timeout: 180_000,
  }, async () => {
    const path = sparseFile('sparse-4g', 4 * 2 ** 30);
    // The plan for this machine's class of board: 2 workers, 1 MiB chunks, 8 MiB in flight.
    const sized = new HashPool({ workers: 2, chunkSize: 2 ** 20, inFlightBytes: 8 * 2 ** 20 });
    try {
      await sized.hash(Readable.from([new Uint8Array(1)])); // workers up and warm
      const baseline = process.memoryUsage.rss();
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage.rss());
      }, 10);
      const digest = await sized.hash(path);
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage.rss());
      // `head -c 4294967296 /dev/zero | sha256sum`
      expect(digest).toEqual({
        sha256: '8479e43911dc45e89f934fe48d01297e16f51d17aa561d4d1c216b1ae0fcddca',
        size: 4 * 2 ** 30,
      });
      // 8 MiB of buffers plus allocator and V8 slack; holding the input would be 4 GiB.
      expect(peak - baseline).toBeLessThan(64 * 2 ** 20);
    } finally {
      await sized.close();
    }
  });
});
