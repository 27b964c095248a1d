import type { Worker } from 'node:worker_threads';
import { type HardwareProfile, planChecking, readProfile } from '../../../hw';
import { VouchError } from '../../core/errors';
import { encodeRoot, type Root } from '../../core/root';
import { type Thread as GroupThread, WorkerGroup } from '../../workers/group';
import { startWorker } from '../../workers/worker';
import { type BundleRun, type CheckedEntries, checkEntries } from './entries';

/**
 * Checks entry bundles (entries.ts) on worker threads, as many as the hardware plan gives
 * (hw/plan.ts planChecking: the cores we may use): the signature checks are most of a
 * sync's CPU time, and the main thread only reads, hashes into the compact range, indexes
 * and writes. Small syncs are checked inline, where starting threads would cost more than
 * it saves. The threads are a worker group (workers/group.ts): one that dies is replaced,
 * and the checks it held run again on another.
 */

export type CheckRequest =
  | { readonly op: 'root'; readonly payload: Uint8Array }
  | ({ readonly op: 'check'; readonly id: number } & BundleRun);

export type CheckReply = { readonly op: 'checked'; readonly id: number } & CheckedEntries;

/** Below this many entries in a sync, threads are not worth starting. */
const inlineLimit = 1024;

/**
 * Threads a check may be given: a check that ends every thread it runs on (a bug, a bundle
 * that exhausts the memory) fails the sync instead of ending threads forever.
 */
const maxTries = 2;

/** A check not settled yet. */
interface Check {
  readonly run: BundleRun;
  tries: number;
  resolve(result: CheckedEntries): void;
  reject(error: unknown): void;
}

/** What the checker keeps of each of its threads: the ids of the checks it holds. */
interface Holding {
  readonly checks: Set<number>;
}

type Thread = GroupThread<Holding>;

export class EntryChecker {
  /** Absent for a check inline. */
  readonly #group: WorkerGroup<Holding, CheckReply> | undefined;
  readonly #checks = new Map<number, Check>();
  #nextId = 0;

  private constructor(
    private readonly root: Root,
    threads: number,
  ) {
    if (threads === 0) return;
    const payload = encodeRoot(root);
    this.#group = new WorkerGroup({
      name: 'sync checker thread',
      size: threads,
      warm: threads,
      // The root comes first, on every thread, replacements too.
      start: () => {
        const worker = startWorker(import.meta.url, 'verify');
        worker.postMessage({ op: 'root', payload } satisfies CheckRequest);
        return worker;
      },
      state: () => ({ checks: new Set<number>() }),
      receive: (thread, reply) => this.#receive(thread, reply),
      stopped: (thread, failure) => this.#died(thread, failure),
      closed: checkerClosed,
    });
  }

  /**
   * A checker for a sync of `entries` entries: threads when there is enough work, as many
   * as the plan for `profile` (this machine's, unless given) says.
   */
  static async for(root: Root, entries: number, profile?: HardwareProfile): Promise<EntryChecker> {
    if (entries < inlineLimit) return new EntryChecker(root, 0);
    const threads = planChecking(profile ?? (await readProfile({ root: '/', paths: [] })));
    return new EntryChecker(root, threads);
  }

  /** The worker threads, for observing them (tests stop one to check recovery). */
  get threads(): readonly Worker[] {
    return this.#group?.workers ?? [];
  }

  /** Checks (part of) an entry bundle. */
  check(run: BundleRun): Promise<CheckedEntries> {
    if (!this.#group) {
      try {
        return Promise.resolve(checkEntries(this.root, run));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#checks.set(id, { run, tries: 0, resolve, reject });
      this.#dispatch(id);
    });
  }

  /** Stops the threads; checks still running fail. A second call waits for the first. */
  async close(): Promise<void> {
    await this.#group?.close();
    const closed = checkerClosed();
    for (const id of this.#checks.keys()) this.#take(id)?.reject(closed);
  }

  /** Gives check `id` to the thread that holds fewest. */
  #dispatch(id: number): void {
    const group = this.#group as WorkerGroup<Holding, CheckReply>;
    const check = this.#checks.get(id) as Check;
    try {
      group.check();
      const thread = group.lightest((t) => t.checks.size);
      check.tries++;
      thread.checks.add(id);
      group.send(thread, { op: 'check', id, ...check.run } satisfies CheckRequest);
    } catch (error) {
      this.#take(id)?.reject(error);
    }
  }

  #receive(thread: Thread, reply: CheckReply): void {
    // A thread given up holds nothing any more: what it still says is not waited for.
    if (!thread.checks.delete(reply.id)) return;
    this.#group?.answered(thread);
    this.#take(reply.id)?.resolve(reply);
  }

  /**
   * A thread stopped with checks on it. An entry check is pure and idempotent (bytes and the
   * root in, leaf hashes and records out; nothing is written), so running it again on
   * another thread gives what the first would have: the sync goes on. Once the group is
   * broken, or the check has had its tries, it fails with the thread's WORKER_FAILED.
   */
  #died(thread: Thread, failure: VouchError): void {
    const ids = [...thread.checks];
    thread.checks.clear();
    for (const id of ids) {
      const check = this.#checks.get(id);
      if (!check) continue;
      if (this.#group?.broken || check.tries >= maxTries) this.#take(id)?.reject(failure);
      else this.#dispatch(id);
    }
  }

  /** Check `id`, no longer waited for here: the caller settles it. */
  #take(id: number): Check | undefined {
    const check = this.#checks.get(id);
    this.#checks.delete(id);
    return check;
  }
}

function checkerClosed(): VouchError {
  return new VouchError('INTERNAL', 'the entry checker was closed');
}
