import type { FileHandle } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { planHashing, readProfile } from '../../../hw';
import { VouchError } from '../../core/errors';
import { CompactRange } from '../../core/merkle';
import { openExistingFile } from '../../files';
import { startWorker } from '../worker';
import type { Reply, Request } from './protocol';

/**
 * SHA-256 on worker threads, sized by the hashing plan (hw/plan.ts). A file is read by the
 * worker that hashes it, from a descriptor the pool opens (protocol.ts says why), into the
 * worker's own buffers of at most two chunks. A stream is read here, and its data moves as
 * transferred ArrayBuffers that come back to be reused, so the pool never holds more than
 * `inFlightBytes` of it whatever the input size, and a reader waits (backpressure) while
 * that much is queued.
 *
 * - `hash(source)`: the plain SHA-256 of a file or a byte stream (an image layer, a
 *   download). One digest is sequential, so one job runs on one worker; jobs run in
 *   parallel up to one per worker, and more wait their turn.
 * - `hashChunked(source, leafSize)`: the RFC 6962 §2.1 Merkle Tree Hash over the chunks of
 *   `leafSize` bytes (the last one shorter), each hashed as an RFC 6962 leaf,
 *   SHA-256(0x00 ‖ chunk) (core/merkle.ts, in hash.worker.ts); no chunks give the empty-tree
 *   hash SHA-256(""). Chunks hash independently, which spreads one large file over every
 *   worker. The leaf size is the caller's: a digest that is recorded (statement.ts
 *   `merkle-sha256-1mib`) fixes it, whatever the plan's chunk size.
 *
 * A worker that dies fails the jobs it held with WORKER_FAILED and is replaced; a job never
 * waits for a thread that is gone.
 */

export interface PoolOptions {
  /** Worker threads. */
  readonly workers: number;
  /** Bytes per read ahead of a file's hashing, and per message of a stream. */
  readonly chunkSize: number;
  /** Bytes read but not yet hashed, at most. At least one chunk. */
  readonly inFlightBytes: number;
  /** Workers booted with the pool (default 1); the others start when there is work for them. */
  readonly warm?: number;
}

/** A file path, or bytes from a stream (a Node Readable is an AsyncIterable<Buffer>). */
export type Source = string | AsyncIterable<Uint8Array>;

export interface Digest {
  /** Lowercase hex. */
  readonly sha256: string;
  /** Bytes hashed. */
  readonly size: number;
}

export interface ChunkedDigest {
  /** RFC 6962 Merkle tree hash over the leaf hashes of the chunks, lowercase hex. */
  readonly root: string;
  readonly leafSize: number;
  readonly chunks: number;
  readonly size: number;
}

/**
 * A pool sized by the hashing plan for this board and the storage `paths` are on, with at
 * least `minWorkers` workers, `warm` of them booted with it (default: one per path).
 */
export async function plannedPool(
  paths: readonly string[],
  { minWorkers = 1, warm = paths.length }: { minWorkers?: number; warm?: number } = {},
): Promise<HashPool> {
  // Every plan has a worker: the first one boots (tens of milliseconds) while the profile
  // is read.
  const first = startHashWorker();
  try {
    const plan = planHashing(await readProfile({ root: '/', paths }));
    const workers = Math.max(minWorkers, plan.workers);
    return new HashPool({ ...plan, workers, warm }, first);
  } catch (error) {
    await first.terminate();
    throw error;
  }
}

/** Workers whose code loaded: they sent their first message, `ready` (hash.worker.ts). */
const loaded = new WeakSet<Worker>();
/**
 * Workers that stopped, and why. Watched from the start: a worker booted before its pool
 * exists (plannedPool) may fail meanwhile, and an 'error' nobody listens to ends the process.
 */
const stopped = new WeakMap<Worker, Error>();

/** A hash worker for a pool to adopt (`new HashPool(options, worker)`). */
export function startHashWorker(): Worker {
  const worker = startWorker(import.meta.url, 'hash');
  worker.once('message', () => loaded.add(worker));
  const stop = (error: Error) => {
    if (!stopped.has(worker)) stopped.set(worker, error);
  };
  worker.on('error', stop);
  worker.on('exit', (code) => stop(new Error(`exit code ${code}`)));
  return worker;
}

export class HashPool {
  readonly #chunkSize: number;
  readonly #workers: number;
  /** Bytes one plain-digest job may have in flight: its share of the pool's budget. */
  readonly #window: number;
  readonly #buffers: Buffers;
  readonly #turns: Semaphore;
  readonly #threads: Thread[] = [];
  readonly #jobs = new Map<number, Job>();
  #nextJob = 0;
  #closed = false;
  /** Workers in a row that died before they were ready. */
  #failedStarts = 0;
  /** Set when workers keep dying before they load: their code is missing or broken. */
  #broken: VouchError | undefined;

  /** `booted`: a worker started for this pool before it was made (plannedPool). */
  constructor({ workers, chunkSize, inFlightBytes, warm = 1 }: PoolOptions, booted?: Worker) {
    for (const [name, value, min] of [
      ['workers', workers, 1],
      ['chunkSize', chunkSize, 1],
      ['inFlightBytes', inFlightBytes, chunkSize],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new VouchError('INTERNAL', `hash pool: ${name} must be an integer ≥ ${min}`);
      }
    }
    this.#chunkSize = chunkSize;
    this.#workers = workers;
    this.#window = Math.max(chunkSize, Math.floor(inFlightBytes / workers / chunkSize) * chunkSize);
    this.#buffers = new Buffers(inFlightBytes);
    this.#turns = new Semaphore(workers);
    // `warm` workers boot now, the others when there is work for them (#lightest): one
    // file's plain digest needs one, and each costs a boot (docs/performance.md).
    if (booted) {
      const thread = this.#adopt(booted);
      this.#threads.push(thread);
      const gone = stopped.get(booted);
      if (gone) this.#died(thread, gone);
    }
    while (this.#threads.length < Math.min(Math.max(warm, 1), workers))
      this.#threads.push(this.#start());
  }

  /** The worker threads started so far, for observing them (tests stop one to check recovery). */
  get threads(): readonly Worker[] {
    return this.#threads.map((thread) => thread.worker);
  }

  /** `onProgress` gets the bytes read so far, now and then (for a progress bar). */
  async hash(source: Source, onProgress?: (bytes: number) => void): Promise<Digest> {
    this.#check();
    await this.#turns.take();
    try {
      return typeof source === 'string'
        ? await this.#hashFile(source, onProgress)
        : await this.#stream(source, onProgress);
    } finally {
      this.#turns.give();
    }
  }

  /** One file's plain digest, read and hashed by one worker. */
  async #hashFile(path: string, onProgress?: (bytes: number) => void): Promise<Digest> {
    const job = this.#begin();
    // Alone in the pool, the file is read ahead on a spare core; beside other jobs, the
    // cores are busy hashing and the cheaper reads in the worker's own thread win.
    const readAhead = this.#jobs.size === 1 && this.#turns.waiting === 0;
    job.onProgress = onProgress;
    try {
      return await this.#withFile(path, job, async ({ fd }) => {
        const thread = this.#lightest((t) => t.jobs.size);
        this.#assign(thread, job);
        const chunkSize = this.#chunkSize;
        this.#send(thread, job, { op: 'file', job: job.id, fd, chunkSize, readAhead });
        const { digest, size } = await job.digest();
        return { sha256: hex(digest), size };
      });
    } finally {
      this.#end(job);
    }
  }

  /** One stream's plain digest, on one worker, read chunk after chunk while earlier ones hash. */
  async #stream(
    source: AsyncIterable<Uint8Array>,
    onProgress?: (bytes: number) => void,
  ): Promise<Digest> {
    const job = this.#begin();
    const input = streamInput(source);
    try {
      const thread = this.#lightest((t) => t.jobs.size);
      this.#assign(thread, job);
      let size = 0;
      for (;;) {
        await job.until(() => job.inFlight + this.#chunkSize <= this.#window);
        const buffer = await this.#buffers.take(this.#chunkSize);
        const length = await this.#fill(input, buffer, job);
        if (length > 0) {
          size += length;
          this.#send(thread, job, { op: 'update', job: job.id, buffer, length }, buffer);
          onProgress?.(size);
        } else {
          this.#buffers.release(buffer);
        }
        if (length < this.#chunkSize) break;
      }
      this.#send(thread, job, { op: 'digest', job: job.id });
      return { sha256: hex((await job.digest()).digest), size };
    } catch (error) {
      for (const thread of job.threads) this.#post(thread, { op: 'drop', job: job.id });
      throw error;
    } finally {
      this.#end(job);
      await input.close();
    }
  }

  /** `onProgress` as for {@link hash}: bytes read so far, in whatever order chunks come. */
  async hashChunked(
    source: Source,
    leafSize: number,
    onProgress?: (bytes: number) => void,
  ): Promise<ChunkedDigest> {
    this.#check();
    if (!Number.isSafeInteger(leafSize) || leafSize < 1) {
      throw new VouchError('INTERNAL', 'hash pool: leaf size must be an integer ≥ 1');
    }
    const job = this.#begin();
    // Leaf hashes come back in any order; the compact range takes them in index order.
    const range = new CompactRange();
    const early = new Map<number, Uint8Array>();
    let size = 0;
    job.onHashed = (bytes) => {
      size += bytes;
      onProgress?.(size);
    };
    job.onLeaf = (index, hash) => {
      early.set(index, hash);
      for (let next = early.get(range.size); next; next = early.get(range.size)) {
        early.delete(range.size);
        range.append(next);
      }
    };
    try {
      const chunks =
        typeof source === 'string'
          ? await this.#chunkedFile(source, leafSize, job)
          : await this.#chunkedStream(source, leafSize, job);
      if (range.size !== chunks) {
        throw new VouchError('INTERNAL', `hash pool: ${range.size} of ${chunks} leaves hashed`);
      }
      return { root: hex(range.root()), leafSize, chunks, size };
    } finally {
      this.#end(job);
    }
  }

  /**
   * A file's leaves, on every worker: each takes the next chunk index from a shared counter
   * until none is left. Returns the number of chunks.
   */
  async #chunkedFile(path: string, leafSize: number, job: Job): Promise<number> {
    const claims = new BigInt64Array(new SharedArrayBuffer(8));
    return this.#withFile(path, job, async (file, size) => {
      const fd = file.fd;
      for (const thread of this.#everyThread()) {
        this.#assign(thread, job);
        const chunkSize = this.#chunkSize;
        this.#send(thread, job, {
          op: 'leaves',
          job: job.id,
          fd,
          leafSize,
          size,
          claims,
          chunkSize,
        });
      }
      try {
        await job.until(() => job.threads.size === 0);
      } finally {
        // A failed job's other workers stop at their next chunk.
        Atomics.store(claims, 0, BigInt(Number.MAX_SAFE_INTEGER));
      }
      // Chunks past `size` were not read: a file that grew meanwhile is not what was hashed.
      if ((await this.#stat(file, path)).size !== size) {
        throw new VouchError('BAD_DATA', `${path} changed while it was being hashed`);
      }
      return Math.ceil(size / leafSize);
    });
  }

  /** A stream's leaves, read here in order and hashed on whichever worker holds least. */
  async #chunkedStream(
    source: AsyncIterable<Uint8Array>,
    leafSize: number,
    job: Job,
  ): Promise<number> {
    const input = streamInput(source);
    let chunks = 0;
    try {
      for (;;) {
        // Leaf-sized buffers: one chunk per message, whatever the plan's chunk size.
        const buffer = await this.#buffers.take(leafSize);
        const length = await this.#fill(input, buffer, job);
        if (length === 0) {
          this.#buffers.release(buffer);
          break;
        }
        const thread = this.#lightest((t) => t.holding);
        this.#assign(thread, job);
        const index = chunks++;
        this.#send(thread, job, { op: 'leaf', job: job.id, index, buffer, length }, buffer);
        job.onHashed?.(length);
        if (length < leafSize) break;
      }
      await job.until(() => job.inFlight === 0);
      return chunks;
    } catch (error) {
      for (const thread of job.threads) this.#post(thread, { op: 'drop', job: job.id });
      throw error;
    } finally {
      await input.close();
    }
  }

  /** Stops the workers; jobs still running fail. */
  async close(): Promise<void> {
    this.#closed = true;
    // The workers stop first: a job's file is closed only once nothing reads it.
    await Promise.all(this.#threads.map((thread) => thread.worker.terminate()));
    const closed = poolClosed();
    for (const job of this.#jobs.values()) job.fail(closed);
    this.#buffers.close(closed);
  }

  #check(): void {
    if (this.#closed) throw poolClosed();
    if (this.#broken) throw this.#broken;
  }

  #begin(): Job {
    this.#check();
    const job = new Job(this.#nextJob++);
    this.#jobs.set(job.id, job);
    return job;
  }

  #end(job: Job): void {
    this.#jobs.delete(job.id);
    for (const thread of job.threads) thread.jobs.delete(job);
  }

  /**
   * Runs `body` with `path` open for job's workers to read, and closes the file only once
   * none of them reads it any longer (each has answered, or died).
   */
  async #withFile<T>(
    path: string,
    job: Job,
    body: (file: FileHandle, size: number) => Promise<T>,
  ): Promise<T> {
    // A regular file only: a FIFO or a device would block the workers or never end.
    const handle = await openExistingFile(path, 'file');
    job.path = path;
    try {
      const { size } = await this.#stat(handle, path);
      return await body(handle, size);
    } finally {
      await job.drained();
      await handle.close();
    }
  }

  #stat(handle: FileHandle, path: string): Promise<{ readonly size: number }> {
    return handle.stat().catch((error) => {
      throw ioError(`cannot read ${path}`, error);
    });
  }

  /** Fills `buffer` from the input; the buffer stays the caller's unless this throws. */
  async #fill(input: Input, buffer: ArrayBuffer, job: Job): Promise<number> {
    try {
      job.check();
      const length = await input.read(new Uint8Array(buffer));
      job.check();
      return length;
    } catch (error) {
      this.#buffers.release(buffer);
      job.fail(error);
      throw error;
    }
  }

  /** The live thread with the least `load`; a new one while none is idle and there is room. */
  #lightest(load: (thread: Thread) => number): Thread {
    let best: Thread | undefined;
    for (const thread of this.#threads) {
      if (!thread.dead && (!best || load(thread) < load(best))) best = thread;
    }
    if ((!best || load(best) > 0) && this.#threads.length < this.#workers && !this.#broken) {
      best = this.#start();
      this.#threads.push(best);
    }
    if (!best) throw this.#broken ?? new VouchError('WORKER_FAILED', 'no hash worker is running');
    return best;
  }

  /** Every live thread, all `workers` of them started. */
  #everyThread(): Thread[] {
    while (this.#threads.length < this.#workers && !this.#broken) {
      this.#threads.push(this.#start());
    }
    const live = this.#threads.filter((thread) => !thread.dead);
    if (live.length === 0) {
      throw this.#broken ?? new VouchError('WORKER_FAILED', 'no hash worker is running');
    }
    return live;
  }

  #assign(thread: Thread, job: Job): void {
    thread.jobs.add(job);
    job.threads.add(thread);
  }

  /** A request that gets one final reply (and, for files, progress before it). */
  #send(thread: Thread, job: Job, request: Request, buffer?: ArrayBuffer): void {
    if (buffer) {
      thread.holding += buffer.byteLength;
      job.inFlight += buffer.byteLength;
    }
    if (thread.pending++ === 0) thread.worker.ref();
    this.#post(thread, request, buffer);
  }

  #post(thread: Thread, request: Request, buffer?: ArrayBuffer): void {
    if (!thread.dead) thread.worker.postMessage(request, buffer ? [buffer] : []);
  }

  #start(): Thread {
    // A job that was opening its file when close() came starts none: nothing would stop it.
    if (this.#closed) throw poolClosed();
    return this.#adopt(startHashWorker());
  }

  #adopt(worker: Worker): Thread {
    const thread: Thread = {
      worker,
      dead: false,
      pending: 0,
      holding: 0,
      jobs: new Set(),
    };
    // Idle workers do not keep the process alive; busy ones do (see #send).
    thread.worker.unref();
    thread.worker.on('message', (reply: Reply) => this.#receive(thread, reply));
    thread.worker.on('error', (error) => this.#died(thread, error));
    // A reply lost: the thread is given up, and stopped so that it reads no file any more.
    thread.worker.on('messageerror', (error) => {
      this.#died(thread, error);
      void thread.worker.terminate();
    });
    thread.worker.on('exit', (code) => {
      this.#died(thread, new Error(`exit code ${code}`));
      // Only now does it read nothing: 'error' comes at once, 'exit' once the thread's
      // reads in flight ended. A job's file is closed once no thread has the job.
      for (const job of thread.jobs) job.release(thread);
    });
    return thread;
  }

  #receive(thread: Thread, reply: Reply): void {
    if (reply.op === 'ready') {
      this.#failedStarts = 0;
      return;
    }
    const job = this.#jobs.get(reply.job);
    switch (reply.op) {
      case 'progress':
        job?.report(job.onProgress, reply.bytes);
        return;
      case 'leaves':
        for (const [index, hash] of reply.leaves) job?.onLeaf?.(index, hash);
        if (reply.done) this.#answered(thread, job);
        job?.report(job.onHashed, reply.bytes);
        return;
      case 'updated':
      case 'leaf':
        this.#answered(thread);
        thread.holding -= reply.buffer.byteLength;
        this.#buffers.release(reply.buffer);
        if (reply.op === 'leaf') job?.onLeaf?.(reply.index, reply.hash);
        job?.acknowledge(reply.buffer.byteLength);
        return;
      case 'digest':
        this.#answered(thread, job);
        job?.report(job.onProgress, reply.size);
        job?.settle(reply);
        return;
      case 'failed':
        this.#answered(thread, job);
        job?.fail(
          reply.reason === 'changed'
            ? new VouchError(
                'BAD_DATA',
                `${job.path} changed while it was being hashed: ${reply.message}`,
              )
            : new VouchError('IO', `cannot read ${job.path}: ${reply.message}`),
        );
        return;
    }
  }

  /** A request's final reply: the thread may idle; with `job`, it is done with that job. */
  #answered(thread: Thread, job?: Job): void {
    if (--thread.pending === 0) thread.worker.unref();
    if (job) {
      job.release(thread);
      thread.jobs.delete(job);
    }
  }

  #died(thread: Thread, error: Error): void {
    if (thread.dead) return;
    thread.dead = true;
    if (this.#closed) return;
    const failure = new VouchError('WORKER_FAILED', `a hash worker stopped: ${error.message}`, {
      cause: error,
    });
    // What it held is gone with it: the budget gets those bytes back.
    this.#buffers.lose(thread.holding);
    for (const job of thread.jobs) job.fail(failure);
    if (!loaded.has(thread.worker) && ++this.#failedStarts >= maxFailedStarts) {
      this.#broken ??= failure;
      return;
    }
    this.#threads[this.#threads.indexOf(thread)] = this.#start();
  }
}

/** Startup deaths in a row after which the pool gives up instead of respawning forever. */
const maxFailedStarts = 3;

interface Thread {
  readonly worker: Worker;
  dead: boolean;
  /** Requests awaiting a reply. */
  pending: number;
  /** Bytes of the pool's buffers the thread holds. */
  holding: number;
  readonly jobs: Set<Job>;
}

/** One hashing job: bytes in flight, the threads on it, its failure, its result. */
class Job {
  inFlight = 0;
  failure: unknown;
  /** The file hashed, for messages. */
  path = '';
  /** Threads the job was given to; for a file, those still reading it. */
  readonly threads = new Set<Thread>();
  onProgress: ((bytes: number) => void) | undefined;
  onLeaf: ((index: number, hash: Uint8Array) => void) | undefined;
  onHashed: ((bytes: number) => void) | undefined;
  #result: { readonly digest: Uint8Array; readonly size: number } | undefined;
  #wake: (() => void)[] = [];

  constructor(readonly id: number) {}

  check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Resolves once `ready()` holds; rejects as soon as the job fails. */
  async until(ready: () => boolean): Promise<void> {
    for (this.check(); !ready(); this.check()) await this.#next();
  }

  /** Resolves once no thread has the job any longer, failed or not. */
  async drained(): Promise<void> {
    while (this.threads.size > 0) await this.#next();
  }

  async digest(): Promise<{ readonly digest: Uint8Array; readonly size: number }> {
    await this.until(() => this.#result !== undefined);
    return this.#result as { readonly digest: Uint8Array; readonly size: number };
  }

  /** Calls a progress callback; one that throws fails the job (it runs in a message handler). */
  report(callback: ((bytes: number) => void) | undefined, bytes: number): void {
    try {
      callback?.(bytes);
    } catch (error) {
      this.fail(error);
    }
  }

  acknowledge(bytes: number): void {
    this.inFlight -= bytes;
    this.#notify();
  }

  release(thread: Thread): void {
    this.threads.delete(thread);
    this.#notify();
  }

  settle(result: { readonly digest: Uint8Array; readonly size: number }): void {
    this.#result = result;
    this.#notify();
  }

  fail(error: unknown): void {
    this.failure ??= error;
    this.#notify();
  }

  #next(): Promise<void> {
    return new Promise<void>((resolve) => this.#wake.push(resolve));
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }
}

/**
 * The pool's buffers: at most `limit` bytes exist, free or in flight. Freed buffers are
 * reused; one of another size is dropped to make room. A single buffer over the limit is
 * allowed when nothing else is allocated, so an odd size cannot deadlock.
 */
class Buffers {
  #allocated = 0;
  readonly #free: ArrayBuffer[] = [];
  #wake: (() => void)[] = [];
  #closed: Error | undefined;

  constructor(readonly limit: number) {}

  async take(size: number): Promise<ArrayBuffer> {
    for (;;) {
      if (this.#closed) throw this.#closed;
      const at = this.#free.findIndex((buffer) => buffer.byteLength === size);
      if (at >= 0) return this.#free.splice(at, 1)[0] as ArrayBuffer;
      while (this.#allocated + size > this.limit && this.#free.length > 0) {
        this.#allocated -= (this.#free.pop() as ArrayBuffer).byteLength;
      }
      if (this.#allocated + size <= this.limit || this.#allocated === 0) {
        this.#allocated += size;
        return new ArrayBuffer(size);
      }
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  release(buffer: ArrayBuffer): void {
    this.#free.push(buffer);
    this.#notify();
  }

  /** Fails every take, now and later. */
  close(error: Error): void {
    this.#closed = error;
    this.#notify();
  }

  /** Bytes that will not come back (a worker died holding them). */
  lose(bytes: number): void {
    this.#allocated -= bytes;
    this.#notify();
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }
}

/** A counting semaphore with first-come, first-served waiters. */
class Semaphore {
  readonly #waiting: (() => void)[] = [];

  constructor(private available: number) {}

  get waiting(): number {
    return this.#waiting.length;
  }

  async take(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.available++;
  }
}

/** A stream read into the pool's buffers. */
interface Input {
  /** Fills `into`; fewer bytes only at the end of the input. */
  read(into: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

function streamInput(source: AsyncIterable<Uint8Array>): Input {
  const iterator = source[Symbol.asyncIterator]();
  let rest: Uint8Array = new Uint8Array(0);
  let done = false;
  return {
    async read(into) {
      let filled = 0;
      while (filled < into.length) {
        if (rest.length === 0) {
          if (done) break;
          const next = await iterator.next().catch((error) => {
            throw ioError('cannot read the stream', error);
          });
          if (next.done) {
            done = true;
            break;
          }
          if (!(next.value instanceof Uint8Array)) {
            throw new VouchError('INTERNAL', 'a hashed stream must yield bytes, not strings');
          }
          rest = next.value;
        }
        const take = Math.min(rest.length, into.length - filled);
        into.set(rest.subarray(0, take), filled);
        filled += take;
        rest = rest.subarray(take);
      }
      return filled;
    },
    async close() {
      // Ends the source early when hashing failed (a Readable is destroyed).
      if (!done) await iterator.return?.();
    },
  };
}

function poolClosed(): VouchError {
  return new VouchError('INTERNAL', 'the hash pool was closed');
}

function ioError(what: string, error: unknown): VouchError {
  if (error instanceof VouchError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new VouchError('IO', `${what}: ${reason}`, { cause: error });
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
