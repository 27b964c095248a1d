import type { TransferListItem, Worker } from 'node:worker_threads';
import { VouchError } from '../core/errors';

/**
 * Worker threads of one kind and their lifecycle, for an owner that decides what runs on
 * them: the hash pool (content/pool/) and the sync's entry checker (sync/checker.ts).
 *
 * - Up to `size` workers: `warm` start with the group, the others when there is work for
 *   them (`lightest`, `all`); one booted before the group existed may be adopted.
 * - A worker's first message says its code loaded (it is not passed on).
 * - A worker that stops (an error, an exit, a message that cannot be read) is given up and a
 *   new one takes its place; the owner hears of it with a WORKER_FAILED error for the jobs
 *   that worker held. Workers that keep dying before they load (their code is missing or
 *   broken) are not replaced forever: the group is then broken, and says so.
 */

/** A worker of the group, with the owner's state `S` beside the group's. */
export type Thread<S> = S & {
  readonly worker: Worker;
  /** It stopped: nothing more goes to it, and another worker took its place. */
  dead: boolean;
  /** Requests awaiting their final reply: while there are any, it keeps the process alive. */
  pending: number;
  /** Its first message came: its code loaded. */
  ready: boolean;
};

export interface GroupOptions<S, M> {
  /** What a worker is, in messages: "hash worker". */
  readonly name: string;
  /** Workers at most, at least 1. */
  readonly size: number;
  /** Workers started with the group (default 1, at most `size`). */
  readonly warm?: number;
  /** Starts a worker. */
  start(): Worker;
  /** The owner's state of a new thread. */
  state(): S;
  /** A message from a thread (after its first). */
  receive(thread: Thread<S>, message: M): void;
  /**
   * A thread stopped: `failure` (WORKER_FAILED) is for the jobs it held. Another thread has
   * taken its place by now, unless the group is `broken`. Comes during the group's
   * construction too, for an adopted worker that had stopped already.
   */
  stopped(thread: Thread<S>, failure: VouchError): void;
  /**
   * A stopped thread's worker exited. Only now does it run nothing: 'error' comes at once,
   * 'exit' once what the thread had under way (a read) ended.
   */
  exited?(thread: Thread<S>): void;
  /** The error for a job asked of the group once it is closed. */
  closed(): VouchError;
}

/** Startup deaths in a row after which the group gives up instead of respawning forever. */
const maxFailedStarts = 3;

/** Workers watched from their start (adoptable): whether their code loaded, why they stopped. */
const loaded = new WeakSet<Worker>();
const stopped = new WeakMap<Worker, Error>();

/**
 * Watches a worker booted before the group that adopts it exists (`new WorkerGroup(options,
 * worker)`): it may load or stop meanwhile, and an 'error' nobody listens to ends the process.
 */
export function adoptable(worker: Worker): Worker {
  worker.once('message', () => loaded.add(worker));
  const stop = (error: Error) => {
    if (!stopped.has(worker)) stopped.set(worker, error);
  };
  worker.on('error', stop);
  worker.on('exit', (code) => stop(new Error(`exit code ${code}`)));
  return worker;
}

export class WorkerGroup<S, M> {
  readonly #options: GroupOptions<S, M>;
  readonly #threads: Thread<S>[] = [];
  /** Workers in a row that died before they were ready. */
  #failedStarts = 0;
  #broken: VouchError | undefined;
  #closing: Promise<void> | undefined;

  /** `booted`: a worker started for this group before it was made ({@link adoptable}). */
  constructor(options: GroupOptions<S, M>, booted?: Worker) {
    this.#options = options;
    if (booted) {
      const thread = this.#adopt(booted, loaded.has(booted));
      this.#threads.push(thread);
      const gone = stopped.get(booted);
      if (gone) this.#died(thread, gone);
    }
    const warm = Math.min(Math.max(options.warm ?? 1, 1), options.size);
    while (this.#threads.length < warm) this.#threads.push(this.#start());
  }

  /** The workers started so far, dead ones replaced in their place. */
  get workers(): readonly Worker[] {
    return this.#threads.map((thread) => thread.worker);
  }

  /** Set once workers keep dying before they load: no more are started. */
  get broken(): VouchError | undefined {
    return this.#broken;
  }

  /** Throws when the group takes no more jobs: closed, or broken. */
  check(): void {
    if (this.#closing) throw this.#options.closed();
    if (this.#broken) throw this.#broken;
  }

  /** The live thread with the least `load`; a new one while none is idle and there is room. */
  lightest(load: (thread: Thread<S>) => number): Thread<S> {
    let best: Thread<S> | undefined;
    for (const thread of this.#threads) {
      if (!thread.dead && (!best || load(thread) < load(best))) best = thread;
    }
    if ((!best || load(best) > 0) && this.#threads.length < this.#options.size && !this.#broken) {
      best = this.#start();
      this.#threads.push(best);
    }
    if (!best) throw this.#noneRunning();
    return best;
  }

  /** Every live thread, all `size` of them started. */
  all(): Thread<S>[] {
    while (this.#threads.length < this.#options.size && !this.#broken) {
      this.#threads.push(this.#start());
    }
    const live = this.#threads.filter((thread) => !thread.dead);
    if (live.length === 0) throw this.#noneRunning();
    return live;
  }

  /** A request that gets one final reply ({@link answered}); the worker is busy until then. */
  send(thread: Thread<S>, message: unknown, transfer?: readonly TransferListItem[]): void {
    if (thread.pending++ === 0) thread.worker.ref();
    this.post(thread, message, transfer);
  }

  /** A message that gets no reply. */
  post(thread: Thread<S>, message: unknown, transfer: readonly TransferListItem[] = []): void {
    if (!thread.dead) thread.worker.postMessage(message, transfer);
  }

  /** A request's final reply came: with none pending, the worker may idle. */
  answered(thread: Thread<S>): void {
    if (--thread.pending === 0) thread.worker.unref();
  }

  /** Stops the workers; a second call waits for the first. */
  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#threads.map((thread) => thread.worker.terminate())).then(
      () => {},
    );
    return this.#closing;
  }

  #noneRunning(): VouchError {
    return this.#broken ?? new VouchError('WORKER_FAILED', `no ${this.#options.name} is running`);
  }

  #start(): Thread<S> {
    // A job that was still starting when close() came starts no worker: nothing would stop it.
    if (this.#closing) throw this.#options.closed();
    return this.#adopt(this.#options.start(), false);
  }

  #adopt(worker: Worker, ready: boolean): Thread<S> {
    const thread: Thread<S> = { ...this.#options.state(), worker, dead: false, pending: 0, ready };
    // Idle workers do not keep the process alive; busy ones do (send).
    worker.unref();
    worker.on('message', (message: M) => {
      if (thread.ready) {
        this.#options.receive(thread, message);
      } else {
        thread.ready = true;
        this.#failedStarts = 0;
      }
    });
    worker.on('error', (error) => this.#died(thread, error));
    // A message lost: the thread is given up, and stopped so that it does nothing more.
    worker.on('messageerror', (error) => {
      this.#died(thread, error);
      void worker.terminate();
    });
    worker.on('exit', (code) => {
      this.#died(thread, new Error(`exit code ${code}`));
      this.#options.exited?.(thread);
    });
    return thread;
  }

  #died(thread: Thread<S>, error: Error): void {
    if (thread.dead) return;
    thread.dead = true;
    if (this.#closing) return;
    const failure = new VouchError(
      'WORKER_FAILED',
      `a ${this.#options.name} stopped: ${error.message}`,
      { cause: error },
    );
    if (!thread.ready && ++this.#failedStarts >= maxFailedStarts) {
      this.#broken ??= failure;
    } else {
      this.#threads[this.#threads.indexOf(thread)] = this.#start();
    }
    this.#options.stopped(thread, failure);
  }
}
