import { VouchError } from '../../core/errors';

/**
 * An HTTP/1.1 response (RFC 9112) decoded from the reads of a socket as they come, without
 * I/O: the status line and headers, then the body by Content-Length, the chunked transfer
 * coding (§7.1) or until the connection closes (§6.3). export.ts drives it with the Engine's
 * socket. A malformed answer is UNAVAILABLE: Docker's answer cannot be read.
 */

/** Status line and headers through the blank line after them, at most. */
export const maxHeadBytes = 64 * 1024;
/** A chunk-size line (hex size and extensions), at most. */
export const maxChunkLine = 1024;

interface Head {
  readonly status: number;
  readonly chunked: boolean;
  readonly length: number | null;
}

export class ResponseDecoder {
  /** The status code, once the head is read; 0 before. */
  status = 0;
  /** The head so far; null once it is read. */
  #head: Buffer | null = Buffer.alloc(0);
  readonly #body = new BodyDecoder();

  /** The whole body has been read. */
  get done(): boolean {
    return this.#body.done;
  }

  /** The body has no length: it ends when the connection closes, and is whole then. */
  get untilClose(): boolean {
    return this.#head === null && this.#body.untilClose;
  }

  /**
   * Decodes one read: `onHead` once the head is read, then body bytes to `take`. False
   * when `take` asked to slow down. Throws UNAVAILABLE for an answer that is not HTTP/1.1
   * or whose framing is broken.
   */
  feed(data: Buffer, onHead: (status: number) => void, take: (bytes: Buffer) => boolean): boolean {
    try {
      let body = data;
      if (this.#head !== null) {
        const joined = Buffer.concat([this.#head, data]);
        const end = joined.indexOf('\r\n\r\n');
        // The head so far, or the whole head through its blank line: the cap holds however
        // the head came in reads (a whole head in one read was let through over it).
        if ((end < 0 ? joined.length : end + 4) > maxHeadBytes) {
          throw new Error('response headers too large');
        }
        if (end < 0) {
          this.#head = joined;
          return true;
        }
        const head = parseHead(joined.subarray(0, end).toString('latin1'));
        this.status = head.status;
        this.#body.start(head);
        this.#head = null;
        body = joined.subarray(end + 4);
        onHead(head.status);
      }
      return this.#body.feed(body, take);
    } catch (error) {
      throw new VouchError('UNAVAILABLE', `Docker's answer: ${(error as Error).message}`);
    }
  }
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
