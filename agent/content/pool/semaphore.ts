/** A counting semaphore with first-come, first-served waiters: the hash pool's job turns. */
export class Semaphore {
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
