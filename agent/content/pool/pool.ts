import type { FileHandle } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { type HashPlan, planHashing, readProfile } from '../../../hw';
import { VouchError } from '../../core/errors';
import { CompactRange } from '../../core/merkle';
import { openExistingFile } from '../../files';
import { adoptable, type Thread as GroupThread, WorkerGroup } from '../../workers/group';
import { startWorker } from '../../workers/worker';
import { Buffers } from './buffers';
import { Job } from './job';
import type { Reply, Request } from './protocol';
import { Semaphore } from './semaphore';
import { type Input, ioError, streamInput } from './stream';

/**
 * SHA-256 on worker threads, sized by the hashing plan (hw/plan.ts). A file is read by the
 * worker that hashes it, from a descriptor the pool opens (protocol.ts says why) or the
 * caller did (OpenFile), into the worker's own buffers of at most two chunks. A stream is
 * read here, and its data moves as transferred ArrayBuffers that come back to be reused, so
 * the pool never holds more than `inFlightBytes` of it whatever the input size, and a
 * reader waits (backpressure) while that much is queued.
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
 * The threads are a worker group (workers/group.ts): a worker that dies fails the jobs it
 * held with WORKER_FAILED and is replaced; a job never waits for a thread that is gone.
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
  /** The hashing plan the sizes come from (plannedPool), for reports. */
  readonly plan?: HashPlan;
}

/**
 * A regular file the caller opened (files.ts openExistingFile) and closes once the digest
 * is back: what is hashed is the file it holds, whatever `path` names meanwhile, so the
 * caller can tie the digest to that file's stat (the agent's digest cache).
 */
export interface OpenFile {
  /** For messages. */
  readonly path: string;
  readonly handle: FileHandle;
}

/** A file, by path (the pool opens it) or open. */
type FileSource = string | OpenFile;

/** A file, or bytes from a stream (a Node Readable is an AsyncIterable<Buffer>). */
export type Source = FileSource | AsyncIterable<Uint8Array>;

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
    return new HashPool({ ...plan, workers, warm, plan }, first);
  } catch (error) {
    await first.terminate();
    throw error;
  }
}

/** A hash worker for a pool to adopt (`new HashPool(options, worker)`). */
export function startHashWorker(): Worker {
  return adoptable(startWorker(import.meta.url, 'hash'));
}

/** What the pool keeps of each of its threads. */
interface Holding {
  /** Bytes of the pool's buffers the thread holds. */
  holding: number;
  readonly jobs: Set<Job<Thread>>;
}

type Thread = GroupThread<Holding>;

/** Replies after the first, `ready`, which the group takes. */
type Answer = Exclude<Reply, { op: 'ready' }>;

export class HashPool {
  readonly #chunkSize: number;
  /** Bytes one plain-digest job may have in flight: its share of the pool's budget. */
  readonly #window: number;
  readonly #buffers: Buffers;
  readonly #turns: Semaphore;
  readonly #group: WorkerGroup<Holding, Answer>;
  readonly #jobs = new Map<number, Job<Thread>>();
  #nextJob = 0;
  /** The plan it was sized by, when plannedPool made it (`minWorkers` may add workers). */
  readonly plan: HashPlan | undefined;

  /** `booted`: a worker started for this pool before it was made (plannedPool). */
  constructor({ workers, chunkSize, inFlightBytes, warm = 1, plan }: PoolOptions, booted?: Worker) {
    for (const [name, value, min] of [
      ['workers', workers, 1],
      ['chunkSize', chunkSize, 1],
      ['inFlightBytes', inFlightBytes, chunkSize],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new VouchError('INTERNAL', `hash pool: ${name} must be an integer ≥ ${min}`);
      }
    }
    this.plan = plan;
    this.#chunkSize = chunkSize;
    this.#window = Math.max(chunkSize, Math.floor(inFlightBytes / workers / chunkSize) * chunkSize);
    this.#buffers = new Buffers(inFlightBytes);
    this.#turns = new Semaphore(workers);
    // `warm` workers boot now, the others when there is work for them (lightest): one
    // file's plain digest needs one, and each costs a boot (docs/performance.md).
    this.#group = new WorkerGroup(
      {
        name: 'hash worker',
        size: workers,
        warm,
        start: startHashWorker,
        state: () => ({ holding: 0, jobs: new Set<Job<Thread>>() }),
        receive: (thread, reply) => this.#receive(thread, reply),
        stopped: (thread, failure) => this.#died(thread, failure),
        // A job's file is closed once no thread has the job.
        exited: (thread) => {
          for (const job of thread.jobs) job.release(thread);
        },
        closed: poolClosed,
      },
      booted,
    );
  }

  /** The worker threads started so far, for observing them (tests stop one to check recovery). */
  get threads(): readonly Worker[] {
    return this.#group.workers;
  }

  /** `onProgress` gets the bytes read so far, now and then (for a progress bar). */
  async hash(source: Source, onProgress?: (bytes: number) => void): Promise<Digest> {
    this.#group.check();
    await this.#turns.take();
    try {
      return isFile(source)
        ? await this.#hashFile(source, onProgress)
        : await this.#stream(source, onProgress);
    } finally {
      this.#turns.give();
    }
  }

  /** One file's plain digest, read and hashed by one worker. */
  async #hashFile(file: FileSource, onProgress?: (bytes: number) => void): Promise<Digest> {
    const job = this.#begin();
    // Alone in the pool, the file is read ahead on a spare core; beside other jobs, the
    // cores are busy hashing and the cheaper reads in the worker's own thread win.
    const readAhead = this.#jobs.size === 1 && this.#turns.waiting === 0;
    job.onProgress = onProgress;
    try {
      return await this.#withFile(file, job, async ({ fd }) => {
        const thread = this.#group.lightest((t) => t.jobs.size);
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
      const thread = this.#group.lightest((t) => t.jobs.size);
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
      this.#drop(job);
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
    this.#group.check();
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
      const chunks = isFile(source)
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
  async #chunkedFile(source: FileSource, leafSize: number, job: Job<Thread>): Promise<number> {
    const claims = new BigInt64Array(new SharedArrayBuffer(8));
    return this.#withFile(source, job, async (file, size) => {
      const fd = file.fd;
      for (const thread of this.#group.all()) {
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
      if ((await this.#stat(file, job.path)).size !== size) {
        throw new VouchError('BAD_DATA', `${job.path} changed while it was being hashed`);
      }
      return Math.ceil(size / leafSize);
    });
  }

  /** A stream's leaves, read here in order and hashed on whichever worker holds least. */
  async #chunkedStream(
    source: AsyncIterable<Uint8Array>,
    leafSize: number,
    job: Job<Thread>,
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
        const thread = this.#group.lightest((t) => t.holding);
        this.#assign(thread, job);
        const index = chunks++;
        this.#send(thread, job, { op: 'leaf', job: job.id, index, buffer, length }, buffer);
        job.onHashed?.(length);
        if (length < leafSize) break;
      }
      await job.until(() => job.inFlight === 0);
      return chunks;
    } catch (error) {
      this.#drop(job);
      throw error;
    } finally {
      await input.close();
    }
  }

  /** Stops the workers; jobs still running fail. */
  async close(): Promise<void> {
    const closing = this.#group.close();
    // Failed before their workers exit, so that no job takes the exits for its end (a
    // chunked digest would find leaves missing); each still closes its file only once
    // nothing reads it (#withFile).
    const closed = poolClosed();
    for (const job of this.#jobs.values()) job.fail(closed);
    await closing;
    this.#buffers.close(closed);
  }

  #begin(): Job<Thread> {
    this.#group.check();
    const job = new Job<Thread>(this.#nextJob++);
    this.#jobs.set(job.id, job);
    return job;
  }

  #end(job: Job<Thread>): void {
    this.#jobs.delete(job.id);
    for (const thread of job.threads) thread.jobs.delete(job);
  }

  /**
   * Runs `body` with the file open for job's workers to read, and returns (closing the file
   * if the pool opened it) only once none of them reads it any longer (each has answered,
   * or died).
   */
  async #withFile<T>(
    file: FileSource,
    job: Job<Thread>,
    body: (file: FileHandle, size: number) => Promise<T>,
  ): Promise<T> {
    const path = typeof file === 'string' ? file : file.path;
    // A regular file only: a FIFO or a device would block the workers or never end.
    const handle = typeof file === 'string' ? await openExistingFile(path, 'file') : file.handle;
    job.path = path;
    try {
      const { size } = await this.#stat(handle, path);
      return await body(handle, size);
    } finally {
      await job.drained();
      if (typeof file === 'string') await handle.close();
    }
  }

  #stat(handle: FileHandle, path: string): Promise<{ readonly size: number }> {
    return handle.stat().catch((error) => {
      throw ioError(`cannot read ${path}`, error);
    });
  }

  /** Fills `buffer` from the input; the buffer stays the caller's unless this throws. */
  async #fill(input: Input, buffer: ArrayBuffer, job: Job<Thread>): Promise<number> {
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

  #assign(thread: Thread, job: Job<Thread>): void {
    thread.jobs.add(job);
    job.threads.add(thread);
  }

  /** A request that gets one final reply (and, for files, progress before it). */
  #send(thread: Thread, job: Job<Thread>, request: Request, buffer?: ArrayBuffer): void {
    if (buffer) {
      thread.holding += buffer.byteLength;
      job.inFlight += buffer.byteLength;
    }
    this.#group.send(thread, request, buffer ? [buffer] : []);
  }

  /** Tells the threads of a job that failed on the reading side to forget it. */
  #drop(job: Job<Thread>): void {
    const request: Request = { op: 'drop', job: job.id };
    for (const thread of job.threads) this.#group.post(thread, request);
  }

  #receive(thread: Thread, reply: Answer): void {
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
  #answered(thread: Thread, job?: Job<Thread>): void {
    this.#group.answered(thread);
    if (job) {
      job.release(thread);
      thread.jobs.delete(job);
    }
  }

  /** A thread stopped: what it held is gone with it. */
  #died(thread: Thread, failure: VouchError): void {
    // The budget gets its bytes back.
    this.#buffers.lose(thread.holding);
    for (const job of thread.jobs) job.fail(failure);
  }
}

function isFile(source: Source): source is FileSource {
  return typeof source === 'string' || !(Symbol.asyncIterator in source);
}

function poolClosed(): VouchError {
  return new VouchError('INTERNAL', 'the hash pool was closed');
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
