import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { VouchError } from '../../core/errors';

/**
 * The body of `GET /images/{name}/get` (what `docker save` streams), read straight from the
 * Engine's socket. Everything else goes through dockerode; this one bulk stream does not:
 * Node's HTTP client makes a new Buffer and a few events for each piece the socket
 * delivers, and fresh body buffers cost page faults, several times the CPU per GiB of a
 * socket read into reused memory (measured: docs/performance.md "Container images"). So
 * this is a small HTTP/1.1
 * response reader (RFC 9112): status line, headers, then the body by Content-Length, the
 * chunked transfer coding (§7.1) or until close, handed on in `batchBytes` pieces whose
 * memory is reused once the consumer releases them.
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
/** Status line and headers, at most. */
const maxHeadBytes = 64 * 1024;
/** An error body (JSON with a message), at most. */
const maxErrorBytes = 64 * 1024;
/** A chunk-size line (hex size and extensions), at most. */
const maxChunkLine = 1024;

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
    let head: Buffer | null = Buffer.alloc(0);
    let status = 0;
    let errorBody: Buffer[] | null = null;
    let errorSize = 0;
    const decoder = new BodyDecoder();
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
        const text = Buffer.concat(errorBody).toString('utf8');
        let message = text.trim();
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? message;
        } catch {
          // Not the Engine's JSON: its text as it is.
        }
        fail(new EngineError(status, message.slice(0, 4096)));
        return;
      }
      if (filled > 0) hand(batch.subarray(0, filled));
      body.push(null);
    };
    reader.read = (length, buffer) => {
      try {
        let data = buffer.subarray(0, length);
        if (head !== null) {
          const joined = Buffer.concat([head, data]);
          const end = joined.indexOf('\r\n\r\n');
          if (end < 0) {
            if (joined.length > maxHeadBytes) throw new Error('response headers too large');
            head = joined;
            return true;
          }
          const parsed = parseHead(joined.subarray(0, end).toString('latin1'));
          status = parsed.status;
          decoder.start(parsed);
          head = null;
          data = joined.subarray(end + 4);
          if (status !== 200) errorBody = [];
          else settle(() => resolve(body));
        }
        const more = decoder.feed(data, take);
        if (decoder.done) {
          finish();
          socket.destroy();
          return false;
        }
        // Backpressure: the socket waits until the body is read on (body.read → resume).
        if (!more) socket.pause();
        return true;
      } catch (error) {
        fail(new VouchError('UNAVAILABLE', `Docker's answer: ${(error as Error).message}`));
        return false;
      }
    };
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n`);
    });
    socket.on('error', (error) => fail(error));
    socket.on('end', () => {
      if (decoder.untilClose && head === null) finish();
      else if (!decoder.done) fail(new Error('the connection closed before the answer ended'));
    });
  });
}

interface Head {
  readonly status: number;
  readonly chunked: boolean;
  readonly length: number | null;
}

function parseHead(text: string): Head {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine)?.[1];
  if (!status) throw new Error(`not an HTTP/1.1 status line: ${statusLine.slice(0, 100)}`);
  let chunked = false;
  let length: number | null = null;
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error('a malformed header line');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    // RFC 9112 §6.1: chunked is the final coding when present.
    if (name === 'transfer-encoding') chunked = /(^|,)\s*chunked$/i.test(value);
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) throw new Error('a bad Content-Length');
      length = Number(value);
    }
  }
  return { status: Number(status), chunked, length };
}

/** Body framing (RFC 9112 §6.3): chunked, a length, or until the connection closes. */
class BodyDecoder {
  done = false;
  untilClose = false;
  #chunked = false;
  #left = 0;
  /** Chunked (§7.1): a size line, data, the CRLF after the data, trailer lines. */
  #state: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
  #line = '';

  start(head: Head): void {
    this.#chunked = head.chunked;
    if (head.chunked) return;
    if (head.length === null) {
      this.untilClose = true;
    } else {
      this.#left = head.length;
      this.done = head.length === 0;
    }
  }

  /** Hands body bytes to `take`; false when `take` asked to slow down. */
  feed(data: Buffer, take: (bytes: Buffer) => boolean): boolean {
    if (!this.#chunked) {
      if (this.untilClose) return take(data);
      const n = Math.min(this.#left, data.length);
      const more = n > 0 ? take(data.subarray(0, n)) : true;
      this.#left -= n;
      this.done = this.#left === 0;
      return more;
    }
    let more = true;
    let at = 0;
    while (at < data.length && !this.done) {
      if (this.#state === 'data') {
        const n = Math.min(this.#left, data.length - at);
        more = take(data.subarray(at, at + n)) && more;
        at += n;
        this.#left -= n;
        if (this.#left === 0) this.#state = 'crlf';
        continue;
      }
      const end = data.indexOf(10, at);
      this.#line += data.toString('latin1', at, end < 0 ? data.length : end + 1);
      at = end < 0 ? data.length : end + 1;
      if (this.#line.length > maxChunkLine) throw new Error('a chunk line too long');
      if (end < 0) break;
      const line = this.#line.replace(/\r?\n$/, '');
      this.#line = '';
      if (this.#state === 'crlf') {
        if (line !== '') throw new Error('no CRLF after a chunk');
        this.#state = 'size';
      } else if (this.#state === 'size') {
        const size = /^([0-9a-fA-F]{1,12})(?:;.*)?$/.exec(line)?.[1];
        if (size === undefined) throw new Error('a bad chunk size');
        this.#left = Number.parseInt(size, 16);
        this.#state = this.#left === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.done = true;
      }
    }
    return more;
  }
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
