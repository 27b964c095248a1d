/**
 * Messages between the hash pool and its worker threads. Data travels as transferred
 * ArrayBuffers (moved, not copied) and comes back the same way to be reused, so the pool's
 * memory stays what it allocated, whatever the input size.
 */

export type Request =
  /** Feed `length` bytes of `buffer` into job's running SHA-256; the buffer comes back. */
  | {
      readonly op: 'update';
      readonly job: number;
      readonly buffer: ArrayBuffer;
      readonly length: number;
    }
  /** Finish the job's SHA-256 (of no data, when no update came) and forget it. */
  | { readonly op: 'digest'; readonly job: number }
  /** RFC 6962 leaf hash of one chunk of a chunked digest; the buffer comes back. */
  | {
      readonly op: 'leaf';
      readonly job: number;
      readonly index: number;
      readonly buffer: ArrayBuffer;
      readonly length: number;
    }
  /** Forget a job that failed on the reading side. */
  | { readonly op: 'drop'; readonly job: number };

export type Reply =
  /** Sent once at start: the worker's code loaded. */
  | { readonly op: 'ready' }
  | { readonly op: 'updated'; readonly job: number; readonly buffer: ArrayBuffer }
  | { readonly op: 'digest'; readonly job: number; readonly digest: Uint8Array }
  | {
      readonly op: 'leaf';
      readonly job: number;
      readonly index: number;
      readonly hash: Uint8Array;
      readonly buffer: ArrayBuffer;
    };
