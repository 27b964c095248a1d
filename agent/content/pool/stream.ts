import { VouchError } from '../../core/errors';

/** A byte stream read into the hash pool's buffers (pool.ts), whatever sizes its pieces come in. */
export interface Input {
  /** Fills `into`; fewer bytes only at the end of the input. */
  read(into: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

export function streamInput(source: AsyncIterable<Uint8Array>): Input {
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

/** A failed read as an IO error, `what` with the reason; a VouchError stays as it is. */
export function ioError(what: string, error: unknown): VouchError {
  if (error instanceof VouchError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new VouchError('IO', `${what}: ${reason}`, { cause: error });
}
