/**
 * The hash pool's buffers: at most `limit` bytes exist, free or in flight. Freed buffers are
 * reused; one of another size is dropped to make room. A single buffer over the limit is
 * allowed when nothing else is allocated, so an odd size cannot deadlock.
 */
export class Buffers {
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
