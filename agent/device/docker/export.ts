import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { apiErrorMessage } from './daemon-errors';
import { ResponseDecoder } from './http-response';

/**
 * The body of `GET /images/{name}/get` (what `docker save` streams), read straight from the
 * Engine's socket. Everything else goes through dockerode; this one bulk stream does not:
 * Node's HTTP client makes a new Buffer and a few events for each piece the socket
 * delivers, and fresh body buffers cost page faults, several times the CPU per GiB of a
 * socket read into reused memory (measured: docs/performance.md "Container images"). So
 * this is a small HTTP/1.1 client: the response decoded as the socket reads come
 * (http-response.ts), its body handed on in `batchBytes` pieces whose memory is reused once
 * the consumer releases them.
 *
 * A client that is not on a plain socket (a test's stand-in; anything dockerode reaches
 * some other way) gets dockerode's own stream, and `release` does nothing.
 */

export interface ImageExport {
  readonly body: NodeJS.ReadableStream;
  /**
   * The consumer is done with every body byte up to the end of `chunk` (a piece of the
   * body, or a part of one): that memory may be reused. Calls come in stream order.
   */
  readonly release: (chunk: Uint8Array) => void;
}

/** An error as dockerode gives one: the status code, and the Engine's message in the text. */
export class EngineError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(`(HTTP code ${statusCode}) ${message}`);
  }
}

/** Bytes per piece of body handed on. */
const batchBytes = 2 ** 20;
/**
 * Pieces that can be reused: more than the stream holds in flight when the consumer keeps
 * up (the body's, the tar parser's and an entry's buffers, the hash pool's window). When
 * all are out, a fresh one is taken rather than waiting.
 */
const ringSlots = 16;
/** Bytes of one socket read. */
const readBytes = 256 * 1024;
/** An error body (JSON with a message), at most. */
const maxErrorBytes = 64 * 1024;

export async function exportImage(docker: Docker, name: string): Promise<ImageExport> {
  const modem = docker.modem as
    | { socketPath?: unknown; host?: unknown; port?: unknown; protocol?: unknown }
    | undefined;
  const path = typeof modem?.socketPath === 'string' ? modem.socketPath : undefined;
  const host = typeof modem?.host === 'string' ? modem.host : undefined;
  if (!path && !(host && modem?.protocol === 'http')) {
    return { body: await docker.getImage(name).get(), release: () => undefined };
  }
  // net keeps the callback it is given: a trampoline to the reader `respond` sets up.
  const reader = { read: (_length: number, _buffer: Buffer): boolean => true };
  const onread = {
    buffer: Buffer.allocUnsafe(readBytes),
    callback: (length: number, buffer: Buffer) => reader.read(length, buffer),
  };
  const socket = path
    ? connect({ path, onread })
    : connect({ host: host as string, port: Number(modem?.port), onread });
  const batches = new Batches();
  const body = await respond(socket, reader, `/images/${encodeURIComponent(name)}/get`, batches);
  return { body, release: (chunk) => batches.release(chunk) };
}

function respond(
  socket: Socket,
  reader: { read: (length: number, buffer: Buffer) => boolean },
  path: string,
  batches: Batches,
): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => {
    const body = new Readable({
      highWaterMark: 4 * batchBytes,
      read() {
        socket.resume();
      },
      destroy(error, callback) {
        socket.destroy();
        callback(error);
      },
    });
    let errorBody: Buffer[] | null = null;
    let errorSize = 0;
    const response = new ResponseDecoder();
    let batch = batches.take();
    let filled = 0;
    let settled = false;
    const settle = (outcome: () => void) => {
      if (!settled) {
        settled = true;
        outcome();
      }
    };
    const fail = (error: Error) => {
      if (settled) {
        body.destroy(error);
      } else {
        settled = true;
        reject(error);
        body.destroy();
      }
    };
    // A body that fails before anyone reads it keeps its error for its reader (finished,
    // async iteration); without a listener the 'error' event would end the process.
    body.on('error', () => undefined);
    const hand = (piece: Buffer): boolean => {
      batches.handed(piece);
      return body.push(piece);
    };
    const onHead = (status: number) => {
      if (status !== 200) errorBody = [];
      else settle(() => resolve(body));
    };
    /** Body bytes: into the batch, handed on when it is full. */
    const take = (bytes: Buffer): boolean => {
      if (errorBody) {
        errorSize += bytes.length;
        if (errorSize <= maxErrorBytes) errorBody.push(Buffer.from(bytes));
        return true;
      }
      let more = true;
      for (let at = 0; at < bytes.length; ) {
        const n = Math.min(bytes.length - at, batchBytes - filled);
        bytes.copy(batch, filled, at, at + n);
        filled += n;
        at += n;
        if (filled === batchBytes) {
          more = hand(batch) && more;
          batch = batches.take();
          filled = 0;
        }
      }
      return more;
    };
    const finish = () => {
      if (errorBody) {
        const message = apiErrorMessage(Buffer.concat(errorBody).toString('utf8'));
        fail(new EngineError(response.status, message));
        return;
      }
      if (filled > 0) hand(batch.subarray(0, filled));
      body.push(null);
    };
    reader.read = (length, buffer) => {
      try {
        const more = response.feed(buffer.subarray(0, length), onHead, take);
        if (response.done) {
          finish();
          socket.destroy();
          return false;
        }
        // Backpressure: the socket waits until the body is read on (body.read → resume).
        if (!more) socket.pause();
        return true;
      } catch (error) {
        fail(error as Error);
        return false;
      }
    };
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n`);
    });
    socket.on('error', (error) => fail(error));
    socket.on('end', () => {
      if (response.untilClose) finish();
      else if (!response.done) fail(new Error('the connection closed before the answer ended'));
    });
  });
}

/**
 * The body's pieces: slots of one ring, reused once released; a fresh buffer when every
 * slot is out (so a consumer that holds on cannot stall the stream). Released in stream
 * order, so a release frees every piece handed out before the one it falls in.
 */
class Batches {
  readonly #ring = Buffer.allocUnsafeSlow(ringSlots * batchBytes);
  readonly #free: number[] = Array.from({ length: ringSlots }, (_, i) => i);
  /** Pieces handed on and not yet released, oldest first. */
  readonly #out: Buffer[] = [];

  take(): Buffer {
    const slot = this.#free.pop();
    if (slot === undefined) return Buffer.allocUnsafeSlow(batchBytes);
    return this.#ring.subarray(slot * batchBytes, (slot + 1) * batchBytes);
  }

  handed(piece: Buffer): void {
    this.#out.push(piece);
  }

  release(chunk: Uint8Array): void {
    const at = this.#out.findIndex(
      (piece) =>
        piece.buffer === chunk.buffer &&
        chunk.byteOffset >= piece.byteOffset &&
        chunk.byteOffset < piece.byteOffset + piece.length,
    );
    if (at < 0) return;
    const piece = this.#out[at] as Buffer;
    const whole = chunk.byteOffset + chunk.length === piece.byteOffset + piece.length;
    for (const done of this.#out.splice(0, whole ? at + 1 : at)) {
      if (done.buffer === this.#ring.buffer) {
        this.#free.push((done.byteOffset - this.#ring.byteOffset) / batchBytes);
      }
    }
  }
}
