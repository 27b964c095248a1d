import { createContext, Script } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../../agent/core/errors';
import {
  maxChunkLine,
  maxHeadBytes,
  ResponseDecoder,
} from '../../../agent/device/docker/http-response';

/**
 * The HTTP/1.1 response decoder of the export stream, fuzzed (fast-check): answers framed
 * every way (chunked, Content-Length, until close) cut into any reads, through one read
 * buffer reused as the socket reuses it; and broken answers refused as UNAVAILABLE whatever
 * the reads. Each run is bounded in time: a decoder that loops fails, it does not hang.
 */

const runs = { numRuns: 150 };

/** Runs `run`, stopped after `ms` however it loops (vm's watchdog interrupts it). */
const bounds = createContext({ run: () => undefined });
const boundedRun = new Script('run()');
function bounded<T>(run: () => T, ms = 1000): T {
  bounds.run = run;
  return boundedRun.runInContext(bounds, { timeout: ms }) as T;
}

interface Decoded {
  /** Each status `onHead` was called with. */
  readonly heads: number[];
  /** The body bytes `take` was given. */
  readonly body: Buffer;
  /** After each read: whether the decoder said the body was whole. */
  readonly done: boolean[];
  readonly untilClose: boolean;
  /** What a read threw, if one did (decoding stops there). */
  readonly error?: unknown;
}

/**
 * Feeds `stream` to a decoder in reads that end at `cuts`, each through the same buffer,
 * overwritten after each read (as net's `onread` reuses its buffer); `take` asks to slow
 * down as `slow` says, in turn.
 */
function decode(stream: Buffer, cuts: readonly number[], slow: readonly boolean[] = []): Decoded {
  const decoder = new ResponseDecoder();
  const socketBuffer = Buffer.alloc(stream.length);
  const heads: number[] = [];
  const taken: Buffer[] = [];
  const done: boolean[] = [];
  let from = 0;
  try {
    for (const end of readEnds(stream.length, cuts)) {
      const length = stream.copy(socketBuffer, 0, from, end);
      bounded(() =>
        decoder.feed(
          socketBuffer.subarray(0, length),
          (status) => heads.push(status),
          (bytes) => {
            taken.push(Buffer.from(bytes));
            return !slow[taken.length % Math.max(1, slow.length)];
          },
        ),
      );
      socketBuffer.fill(0xee);
      done.push(decoder.done);
      from = end;
    }
  } catch (error) {
    return { heads, body: Buffer.concat(taken), done, untilClose: decoder.untilClose, error };
  }
  return { heads, body: Buffer.concat(taken), done, untilClose: decoder.untilClose };
}

/** Where reads end in a stream of `length` bytes: at `cuts` (modulo its length), and its end. */
function readEnds(length: number, cuts: readonly number[]): number[] {
  const ends = new Set([...cuts.map((at) => at % length).filter((at) => at > 0), length]);
  return [...ends].sort((a, b) => a - b);
}

/** Where reads end: any points of a stream. */
const cutsOf = fc.array(fc.nat(), { maxLength: 24 });
const body = fc.uint8Array({ maxLength: 3000 }).map((bytes) => Buffer.from(bytes));
const status = fc.constantFrom(200, 404, 500);
/** Header lines that do not frame the body. */
const otherHeaders = fc.array(
  fc.constantFrom(
    'Content-Type: application/x-tar',
    'Api-Version: 1.41',
    'Docker-Experimental: false',
    'Server: Docker/20.10.24+dfsg1 (linux)',
    'Date: Mon, 01 Jan 2024 00:00:00 GMT',
  ),
  { maxLength: 5 },
);
/** A chunk-size line's extension (RFC 9112 §7.1.1), or none. */
const extension = fc.option(fc.stringMatching(/^;[a-z]{1,8}(=[a-z0-9]{0,8})?$/), { nil: '' });

function head(code: number, headers: readonly string[]): string {
  return `HTTP/1.1 ${code} X\r\n${headers.map((line) => `${line}\r\n`).join('')}\r\n`;
}

/** `data` cut where `cuts` say into non-empty pieces. */
function pieces(data: Buffer, cuts: readonly number[]): Buffer[] {
  const ends = [...new Set([...cuts.map((at) => at % (data.length + 1)), data.length])];
  ends.sort((a, b) => a - b);
  let from = 0;
  const result: Buffer[] = [];
  for (const end of ends) {
    if (end > from) result.push(data.subarray(from, end));
    from = end;
  }
  return result;
}

/** A chunked body (§7.1): each piece with its hex size in either case, then the last chunk. */
const chunked = fc
  .record({
    body,
    cuts: cutsOf,
    upper: fc.boolean(),
    zeros: fc.nat(3),
    extension,
    trailers: fc.array(fc.constantFrom('X-Trailer: 1', 'Y: two'), { maxLength: 2 }),
  })
  .map(({ body, cuts, upper, zeros, extension, trailers }) => {
    const chunks = pieces(body, cuts).map((piece) => {
      const size = '0'.repeat(zeros) + piece.length.toString(16);
      const line = (upper ? size.toUpperCase() : size) + extension;
      return Buffer.concat([Buffer.from(`${line}\r\n`), piece, Buffer.from('\r\n')]);
    });
    const last = `0${extension}\r\n${trailers.map((line) => `${line}\r\n`).join('')}\r\n`;
    return { body, encoded: Buffer.concat([...chunks, Buffer.from(last)]) };
  });

const refusal = (decoded: Decoded): VouchError => {
  expect(decoded.error).toBeInstanceOf(VouchError);
  expect((decoded.error as VouchError).code).toBe('UNAVAILABLE');
  return decoded.error as VouchError;
};

describe('ResponseDecoder: answers as they are framed', () => {
  it('is bounded in each run: a decoder that looped would fail', () => {
    const looping = () => {
      for (;;) {
        // As a decoder stuck on its input would.
      }
    };
    expect(() => bounded(looping, 50)).toThrow(/timed out/);
  });

  it('decodes a chunked body whole, whatever the chunks and the reads', () => {
    fc.assert(
      fc.property(
        status,
        otherHeaders,
        chunked,
        cutsOf,
        fc.array(fc.boolean()),
        (code, headers, { body, encoded }, cuts, slow) => {
          const top = head(code, [...headers, 'Transfer-Encoding: chunked']);
          const stream = Buffer.concat([Buffer.from(top), encoded]);
          const decoded = decode(stream, cuts, slow);
          expect(decoded.error).toBeUndefined();
          expect(decoded.heads).toEqual([code]);
          expect(decoded.body.equals(body)).toBe(true);
          // Whole with the answer's last byte, not before.
          expect(decoded.done.at(-1)).toBe(true);
          expect(decoded.done.slice(0, -1).every((done) => !done)).toBe(true);
        },
      ),
      runs,
    );
  });

  it('decodes a Content-Length body, leaving what follows it', () => {
    fc.assert(
      fc.property(
        otherHeaders,
        body,
        fc.uint8Array({ maxLength: 50 }),
        cutsOf,
        (headers, body, after, cuts) => {
          const top = head(200, [`Content-Length: ${body.length}`, ...headers]);
          const stream = Buffer.concat([Buffer.from(top), body, after]);
          const decoded = decode(stream, cuts);
          expect(decoded.error).toBeUndefined();
          expect(decoded.body.equals(body)).toBe(true);
          expect(decoded.done.at(-1)).toBe(true);
          // Whole from the read that holds its last byte on.
          const whole = top.length + body.length;
          expect(decoded.done).toEqual(readEnds(stream.length, cuts).map((end) => end >= whole));
        },
      ),
      runs,
    );
  });

  it('takes everything after the head as the body when nothing frames it (until close)', () => {
    fc.assert(
      fc.property(otherHeaders, body, cutsOf, (headers, body, cuts) => {
        const top = head(200, headers);
        const decoded = decode(Buffer.concat([Buffer.from(top), body]), cuts);
        expect(decoded.error).toBeUndefined();
        expect(decoded.body.equals(body)).toBe(true);
        expect(decoded.untilClose).toBe(true);
        expect(decoded.done.some((done) => done)).toBe(false);
      }),
      runs,
    );
  });

  it('is never whole, and never refuses, when the stream ends early', () => {
    fc.assert(
      fc.property(chunked, fc.boolean(), fc.nat(), cutsOf, (answer, useLength, at, cuts) => {
        const top = useLength
          ? head(200, [`Content-Length: ${answer.body.length}`])
          : head(200, ['Transfer-Encoding: chunked']);
        const whole = Buffer.concat([Buffer.from(top), useLength ? answer.body : answer.encoded]);
        const cut = whole.subarray(0, at % whole.length);
        const decoded = decode(cut, cuts);
        expect(decoded.error).toBeUndefined();
        expect(decoded.done.some((done) => done)).toBe(false);
        expect(decoded.untilClose).toBe(false);
        expect(answer.body.subarray(0, decoded.body.length).equals(decoded.body)).toBe(true);
      }),
      runs,
    );
  });
});

describe('ResponseDecoder: broken answers are UNAVAILABLE, whatever the reads', () => {
  /** A chunked answer whose body is `valid` chunks, then `broken`. */
  const chunkedWith = (valid: Buffer, broken: string | Buffer) =>
    Buffer.concat([
      Buffer.from(head(200, ['Transfer-Encoding: chunked'])),
      valid,
      Buffer.from(broken),
    ]);

  it('refuses a chunk size that is not 1 to 12 hex digits', () => {
    const notHex = fc
      .string({
        unit: fc.constantFrom(...'0123456789abcdefgxyzXYZ -+.;\t\r'.split('')),
        maxLength: 40,
      })
      .filter((line) => !/^[0-9a-fA-F]{1,12}(?:;.*)?$/.test(line));
    const overCap = fc.stringMatching(/^[0-9a-f]{13,30}$/);
    fc.assert(
      fc.property(chunked, fc.oneof(notHex, overCap), cutsOf, ({ encoded }, line, cuts) => {
        // Valid chunks, then the bad size line where the last chunk would be.
        const decoded = decode(chunkedWith(chunksOf(encoded), `${line}\r\n`), cuts);
        expect(refusal(decoded).message).toBe("Docker's answer: a bad chunk size");
      }),
      runs,
    );
  });

  it('refuses a chunk-size line over its cap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 * maxChunkLine }), cutsOf, (extra, cuts) => {
        const line = `5;${'x'.repeat(maxChunkLine + extra)}`;
        const decoded = decode(chunkedWith(Buffer.alloc(0), `${line}\r\nhello\r\n0\r\n\r\n`), cuts);
        expect(refusal(decoded).message).toBe("Docker's answer: a chunk line too long");
      }),
      runs,
    );
  });

  it('refuses chunk data not followed by CRLF', () => {
    const notCrlf = fc
      .string({ unit: fc.constantFrom(...'ab\r\t '.split('')), minLength: 1, maxLength: 20 })
      .filter((text) => text !== '\r');
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        notCrlf,
        cutsOf,
        (data, after, cuts) => {
          const broken = Buffer.concat([
            Buffer.from(`${data.length.toString(16)}\r\n`),
            data,
            Buffer.from(`${after}\r\n0\r\n\r\n`),
          ]);
          const decoded = decode(chunkedWith(Buffer.alloc(0), broken), cuts);
          expect(refusal(decoded).message).toBe("Docker's answer: no CRLF after a chunk");
          expect(decoded.body.equals(Buffer.from(data))).toBe(true);
        },
      ),
      runs,
    );
  });

  it('refuses a Content-Length that is not 1 to 15 digits', () => {
    const bad = fc.oneof(
      fc.stringMatching(/^[0-9]{16,20}$/),
      fc
        .stringMatching(/^-?[0-9]{0,3}[a-z.+ -][0-9]{0,3}$/)
        .filter((v) => !/^\d{1,15}$/.test(v.trim())),
    );
    fc.assert(
      fc.property(bad, cutsOf, (length, cuts) => {
        const decoded = decode(Buffer.from(head(200, [`Content-Length: ${length}`])), cuts);
        expect(refusal(decoded).message).toBe("Docker's answer: a bad Content-Length");
      }),
      runs,
    );
  });

  it('refuses what is not an HTTP/1.1 status line and header lines', () => {
    const notStatus = fc.constantFrom(
      'SSH-2.0-x',
      'HTTP/2 200',
      'HTTP/1.1 20',
      'http/1.1 200 OK',
      '',
    );
    fc.assert(
      fc.property(notStatus, cutsOf, (line, cuts) => {
        const decoded = decode(Buffer.from(`${line}\r\nX: 1\r\n\r\nbody`), cuts);
        expect(refusal(decoded).message).toMatch(/^Docker's answer: not an HTTP\/1\.1 status line/);
      }),
      runs,
    );
    const decoded = decode(Buffer.from('HTTP/1.1 200 OK\r\nno colon\r\n\r\n'), []);
    expect(refusal(decoded).message).toBe("Docker's answer: a malformed header line");
  });

  it('refuses a head over its cap, whether it comes in one read or many', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2000 }), cutsOf, (over, cuts) => {
        const top = head(200, ['Content-Length: 0']);
        // A header that brings the head (through its blank line) to the cap plus `over`.
        const filler = `X: ${'y'.repeat(maxHeadBytes + over - top.length - 5)}`;
        const stream = Buffer.from(head(200, ['Content-Length: 0', filler]));
        expect(stream.length).toBe(maxHeadBytes + over);
        const decoded = decode(stream, cuts);
        expect(refusal(decoded).message).toBe("Docker's answer: response headers too large");
      }),
      runs,
    );
  });

  it('refuses a head one byte over its cap that comes in one read (found by the property above)', () => {
    const top = head(200, ['Content-Length: 0']);
    const filler = `X: ${'y'.repeat(maxHeadBytes + 1 - top.length - 5)}`;
    const decoded = decode(Buffer.from(head(200, ['Content-Length: 0', filler])), []);
    expect(refusal(decoded).message).toBe("Docker's answer: response headers too large");
  });

  it('takes a head of the cap, whatever the reads', () => {
    fc.assert(
      fc.property(cutsOf, (cuts) => {
        const top = head(200, ['Content-Length: 0']);
        const filler = `X: ${'y'.repeat(maxHeadBytes - top.length - 5)}`;
        const stream = Buffer.from(head(200, ['Content-Length: 0', filler]));
        expect(stream.length).toBe(maxHeadBytes);
        const decoded = decode(stream, cuts);
        expect(decoded.error).toBeUndefined();
        expect(decoded.done.at(-1)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });
});

/** The chunks of an encoded chunked body without its last chunk and trailers. */
function chunksOf(encoded: Buffer): Buffer {
  let at = 0;
  for (;;) {
    const lineEnd = encoded.indexOf('\r\n', at);
    const size = Number.parseInt(
      encoded.toString('latin1', at, lineEnd).split(';')[0] as string,
      16,
    );
    if (size === 0) return encoded.subarray(0, at);
    at = lineEnd + 2 + size + 2;
  }
}
