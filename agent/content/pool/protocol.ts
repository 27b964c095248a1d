/**
 * Messages between the hash pool and its worker threads.
 *
 * Files are read by the workers themselves, from a descriptor the pool opened: a read then
 * costs no message and no wake-up of another thread, and the bytes go from the kernel's copy
 * straight into the hash while still in the CPU cache. Streams are read by the pool and
 * their bytes travel as transferred ArrayBuffers (moved, not copied) that come back to be
 * reused, so the pool's memory stays what it allocated, whatever the input size.
 */

export type Request =
  /**
   * The SHA-256 of the file open as `fd`, from offset 0 to its end. `readAhead`: the next
   * `chunkSize` bytes are read (on a libuv thread) while the last ones hash — for a file
   * hashed alone, with cores to spare; else the worker reads in its own thread, small reads
   * that stay in the CPU cache. Progress, then the digest or the failure, come back.
   */
  | {
      readonly op: 'file';
      readonly job: number;
      readonly fd: number;
      readonly chunkSize: number;
      readonly readAhead: boolean;
    }
  /**
   * RFC 6962 leaf hashes of the `leafSize` chunks of the first `size` bytes of `fd`. Every
   * worker of the job takes the next chunk index from `claims[0]` (Atomics.add, shared
   * memory), so a busy or slow worker never holds chunks up. Leaves come back in batches.
   */
  | {
      readonly op: 'leaves';
      readonly job: number;
      readonly fd: number;
      readonly leafSize: number;
      readonly size: number;
      readonly claims: BigInt64Array;
      readonly chunkSize: number;
    }
  /** Feed `length` bytes of `buffer` into job's running SHA-256; the buffer comes back. */
  | {
      readonly op: 'update';
      readonly job: number;
      readonly buffer: ArrayBuffer;
      readonly length: number;
    }
  /** Finish the job's SHA-256 (of no data, when no update came) and forget it. */
  | { readonly op: 'digest'; readonly job: number }
  /** RFC 6962 leaf hash of one chunk of a streamed chunked digest; the buffer comes back. */
  | {
      readonly op: 'leaf';
      readonly job: number;
      readonly index: number;
      readonly buffer: ArrayBuffer;
      readonly length: number;
    }
  /** Forget a streamed job that failed on the reading side. */
  | { readonly op: 'drop'; readonly job: number };

export type Reply =
  /** Sent once at start: the worker's code loaded. */
  | { readonly op: 'ready' }
  | { readonly op: 'updated'; readonly job: number; readonly buffer: ArrayBuffer }
  /** The end of a `digest` or `file` request; `size`: bytes hashed. */
  | {
      readonly op: 'digest';
      readonly job: number;
      readonly digest: Uint8Array;
      readonly size: number;
    }
  | {
      readonly op: 'leaf';
      readonly job: number;
      readonly index: number;
      readonly hash: Uint8Array;
      readonly buffer: ArrayBuffer;
    }
  /** Of a `file` request: bytes hashed so far. */
  | { readonly op: 'progress'; readonly job: number; readonly bytes: number }
  /**
   * Of a `leaves` request: leaf hashes by chunk index, and the bytes they cover; `done`
   * ends the worker's part of the job.
   */
  | {
      readonly op: 'leaves';
      readonly job: number;
      readonly leaves: readonly (readonly [index: number, hash: Uint8Array])[];
      readonly bytes: number;
      readonly done: boolean;
    }
  /**
   * The end of a `file` or `leaves` request that failed: `read`, the system's error; `changed`,
   * the file ended before `size` bytes (it shrank while being hashed).
   */
  | {
      readonly op: 'failed';
      readonly job: number;
      readonly reason: 'read' | 'changed';
      readonly message: string;
    };
