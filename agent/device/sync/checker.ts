import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { VouchError } from '../../core/errors';
import { encodeRoot, type Root } from '../../core/root';
import { startWorker } from '../worker';
import { type BundleRun, type CheckedEntries, checkEntries } from './entries';

/**
 * Checks entry bundles (entries.ts) on worker threads, one per core: the signature checks
 * are most of a sync's CPU time, and the main thread only reads, hashes into the compact
 * range, indexes and writes. Small syncs are checked inline, where starting threads would
 * cost more than it saves. A thread that dies fails the sync (the state is kept).
 */

export type CheckRequest =
  | { readonly op: 'root'; readonly payload: Uint8Array }
  | ({ readonly op: 'check'; readonly id: number } & BundleRun);

export type CheckReply = { readonly op: 'checked'; readonly id: number } & CheckedEntries;

/** Below this many entries in a sync, threads are not worth starting. */
const inlineLimit = 1024;

interface Pending {
  resolve(result: CheckedEntries): void;
  reject(error: unknown): void;
}

interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

export class EntryChecker {
  readonly #threads: Thread[] = [];
  #nextId = 0;
  #failure: VouchError | undefined;
  #closed: Promise<void> | undefined;

  private constructor(
    private readonly root: Root,
    threads: number,
  ) {
    const payload = encodeRoot(root);
    for (let i = 0; i < threads; i++) {
      const thread: Thread = { worker: startWorker(import.meta.url, 'verify'), pending: new Map() };
      const fail = (error: unknown) => {
        this.#failure = new VouchError(
          'INTERNAL',
          `entry checker thread failed: ${(error as Error)?.message ?? error}`,
          { cause: error },
        );
        for (const job of thread.pending.values()) job.reject(this.#failure);
        thread.pending.clear();
      };
      thread.worker.on('message', (reply: CheckReply) => {
        const job = thread.pending.get(reply.id);
        thread.pending.delete(reply.id);
        job?.resolve(reply);
      });
      thread.worker.on('error', fail);
      thread.worker.on('exit', (code) => {
        if (thread.pending.size > 0) fail(new Error(`thread exited with code ${code}`));
      });
      thread.worker.postMessage({ op: 'root', payload } satisfies CheckRequest);
      this.#threads.push(thread);
    }
  }

  /** A checker for a sync of `entries` entries: threads when there is enough work. */
  static for(root: Root, entries: number): EntryChecker {
    const threads = entries < inlineLimit ? 0 : Math.min(availableParallelism(), 8);
    return new EntryChecker(root, threads);
  }

  /** Checks (part of) an entry bundle. */
  check(run: BundleRun): Promise<CheckedEntries> {
    if (this.#failure) return Promise.reject(this.#failure);
    const [first, ...others] = this.#threads;
    if (!first) {
      try {
        return Promise.resolve(checkEntries(this.root, run));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const thread = others.reduce((a, b) => (b.pending.size < a.pending.size ? b : a), first);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ op: 'check', id, ...run } satisfies CheckRequest);
    });
  }

  /** Stops the threads; a second call waits for the first. */
  close(): Promise<void> {
    this.#closed ??= Promise.all(this.#threads.map((thread) => thread.worker.terminate())).then(
      () => {},
    );
    return this.#closed;
  }
}
