/**
 * One hashing job of the pool (pool.ts): bytes in flight, the threads on it, its failure,
 * its result; the pool's code waits on it (`until`, `drained`, `digest`) while the threads'
 * replies move it on.
 */
export class Job<Thread> {
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
