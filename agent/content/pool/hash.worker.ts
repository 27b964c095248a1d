import { createHash, type Hash } from 'node:crypto';
import { read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { parentPort, type TransferListItem } from 'node:worker_threads';
import { hashLeaf, leafPrefix } from '../../core/merkle';
import type { Reply, Request } from './protocol';

/**
 * A hashing thread of the pool (pool.ts). node:crypto is OpenSSL, which uses the SHA-NI or
 * ARMv8 SHA-2 instructions where the CPU has them. A message it does not understand throws,
 * which ends the thread: the pool then fails that thread's jobs and starts a new one.
 */
const port = parentPort;
if (!port) throw new Error('hash.worker runs as a worker thread of the hash pool');

/**
 * Bytes per read when the worker reads in its own thread. The kernel's copy lands in the
 * CPU cache and the hash takes it from there: 64 KiB reads cost a quarter of the system time
 * of 1 MiB ones (1 GiB from the page cache: 0.15 s against 0.5-0.7 s here; openssl dgst reads 8 KiB).
 */
const cachedReadSize = 64 * 1024;
/** Bytes between two progress messages of a file. */
const progressEvery = 16 * 2 ** 20;
/** Leaf hashes per message of a `leaves` request. */
const leavesPerMessage = 16;

const running = new Map<number, { hash: Hash; size: number }>();
/** Reused between jobs: what a worker holds stays the same whatever it hashes. */
const buffers = new Map<string, Buffer>();

function buffer(name: string, size: number): Buffer {
  let found = buffers.get(name);
  if (found?.length !== size) {
    found = Buffer.allocUnsafe(size);
    buffers.set(name, found);
  }
  return found;
}

function reply(message: Reply, transfer: TransferListItem[] = []): void {
  port?.postMessage(message, transfer);
}

const readAt = promisify(read);
let readingAhead = false;

/** SHA-256 of `fd` from offset 0 to its end, with the next read running while a chunk hashes. */
async function hashAhead(job: number, fd: number, chunkSize: number): Promise<void> {
  const hash = createHash('sha256');
  const chunks = [buffer('ahead-0', chunkSize), buffer('ahead-1', chunkSize)];
  let size = 0;
  let next = readAt(fd, chunks[0] as Buffer, 0, chunkSize, 0);
  for (let turn = 0; ; turn ^= 1) {
    const { bytesRead, buffer: chunk } = await next;
    if (bytesRead === 0) break;
    size += bytesRead;
    next = readAt(fd, chunks[turn ^ 1] as Buffer, 0, chunkSize, size);
    hash.update(chunk.subarray(0, bytesRead));
    progress(job, size - bytesRead, size);
  }
  finish(job, hash, size);
}

/** The same, read in this thread. */
function hashHere(job: number, fd: number, chunkSize: number): void {
  const hash = createHash('sha256');
  const chunk = buffer('cached', Math.min(chunkSize, cachedReadSize));
  let size = 0;
  for (;;) {
    const bytesRead = readSync(fd, chunk, 0, chunk.length, size);
    if (bytesRead === 0) break;
    size += bytesRead;
    hash.update(chunk.subarray(0, bytesRead));
    progress(job, size - bytesRead, size);
  }
  finish(job, hash, size);
}

/** Tells the pool the bytes hashed, each time they pass another {@link progressEvery}. */
function progress(job: number, before: number, after: number): void {
  if (Math.floor(after / progressEvery) > Math.floor(before / progressEvery)) {
    reply({ op: 'progress', job, bytes: after });
  }
}

function finish(job: number, hash: Hash, size: number): void {
  reply({ op: 'digest', job, digest: new Uint8Array(hash.digest()), size });
}

/** Leaf hashes of the chunks this worker claims, until none is left. */
function hashLeaves(request: Extract<Request, { op: 'leaves' }>): void {
  const { job, fd, leafSize, size, claims } = request;
  const chunk = buffer('cached', Math.min(request.chunkSize, cachedReadSize));
  let leaves: [number, Uint8Array][] = [];
  let bytes = 0;
  for (;;) {
    const index = Number(Atomics.add(claims, 0, 1n));
    const start = index * leafSize;
    if (start >= size) break;
    const end = Math.min(start + leafSize, size);
    const hash = createHash('sha256').update(leafPrefix);
    for (let at = start; at < end; ) {
      const bytesRead = readSync(fd, chunk, 0, Math.min(chunk.length, end - at), at);
      if (bytesRead === 0) {
        reply({ op: 'failed', job, reason: 'changed', message: `it ended at ${at} bytes` });
        return;
      }
      hash.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
    leaves.push([index, new Uint8Array(hash.digest())]);
    bytes += end - start;
    if (leaves.length === leavesPerMessage) {
      reply({ op: 'leaves', job, leaves, bytes, done: false });
      leaves = [];
      bytes = 0;
    }
  }
  reply({ op: 'leaves', job, leaves, bytes, done: true });
}

/** A read that failed ends the job with the system's message (EIO, a file that went away). */
function failed(job: number, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  reply({ op: 'failed', job, reason: 'read', message });
}

port.on('message', (request: Request) => {
  switch (request.op) {
    case 'file': {
      const { job, fd, chunkSize } = request;
      // One file at a time reads ahead (its buffers are the worker's).
      if (request.readAhead && !readingAhead) {
        readingAhead = true;
        hashAhead(job, fd, chunkSize)
          .catch((error) => failed(job, error))
          .finally(() => {
            readingAhead = false;
          });
      } else {
        try {
          hashHere(job, fd, chunkSize);
        } catch (error) {
          failed(job, error);
        }
      }
      return;
    }
    case 'leaves':
      try {
        hashLeaves(request);
      } catch (error) {
        failed(request.job, error);
      }
      return;
    case 'update': {
      let stream = running.get(request.job);
      if (!stream) {
        stream = { hash: createHash('sha256'), size: 0 };
        running.set(request.job, stream);
      }
      stream.hash.update(new Uint8Array(request.buffer, 0, request.length));
      stream.size += request.length;
      reply({ op: 'updated', job: request.job, buffer: request.buffer }, [request.buffer]);
      return;
    }
    case 'digest': {
      const stream = running.get(request.job) ?? { hash: createHash('sha256'), size: 0 };
      running.delete(request.job);
      finish(request.job, stream.hash, stream.size);
      return;
    }
    case 'leaf': {
      const hash = hashLeaf(new Uint8Array(request.buffer, 0, request.length));
      const { job, index, buffer } = request;
      reply({ op: 'leaf', job, index, hash, buffer }, [buffer]);
      return;
    }
    case 'drop':
      running.delete(request.job);
      return;
    default:
      throw new Error(`hash worker: unknown request ${JSON.stringify(request)}`);
  }
});
reply({ op: 'ready' });
