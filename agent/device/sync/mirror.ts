import { request as httpRequest, type IncomingMessage, STATUS_CODES } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { VouchError } from '../../core/errors';
import { readFileCapped } from '../../files';
import type { Logger } from '../../logger';

/**
 * A mirror of the log: a static c2sp.org/tlog-tiles directory (`checkpoint`, `tile/…`,
 * `tile/entries/…`, and `roots/<V>.json` for root updates) over http(s):// or on a file
 * system (file://: a USB stick, a publisher's public/ directory). Every read has a size
 * cap enforced while the bytes arrive; every HTTP request a timeout covering its body and
 * a shorter one for opening its connection, so that a host that never answers is given
 * up on fast. Every error names the mirror and the file, and says what went wrong.
 */
export interface Mirror {
  readonly url: string;
  /** The bytes at `path` under the mirror, or undefined when it has none (404, no file). */
  get(path: string, maxBytes: number): Promise<Uint8Array | undefined>;
}

export interface MirrorOptions {
  /** Per request, body included (ms). */
  readonly timeoutMs: number;
  /** To open a connection, from the host name's resolution to the TCP handshake's end (ms); default `timeoutMs`. */
  readonly connectTimeoutMs?: number | undefined;
  /** Told (info) when a request keeps us waiting, so that a slow mirror is not silence. */
  readonly logger?: Logger | undefined;
}

/** A request with no complete answer after this long gets a line on the log. */
const slowNoticeMs = 2000;
/** Static hosts and CDNs redirect (http → https, to a bucket); more than this is a loop. */
const maxRedirects = 5;

export function openMirror(url: string, options: MirrorOptions): Mirror {
  if (url.startsWith('file://')) return fileMirror(url);
  if (url.startsWith('http://') || url.startsWith('https://')) return httpMirror(url, options);
  throw new VouchError('USAGE', `mirror ${url}: expected an http://, https:// or file:// URL`);
}

function unavailable(url: string, message: string, cause?: unknown): VouchError {
  return new VouchError('UNAVAILABLE', `mirror ${url}: ${message}`, { cause });
}

function tooLarge(url: string, path: string, maxBytes: number): VouchError {
  return new VouchError('PAYLOAD_TOO_LARGE', `mirror ${url}: ${path} is over ${maxBytes} bytes`);
}

/** A catch-all web server or a portal: a page where a log file belongs. */
function htmlPage(url: string, path: string): VouchError {
  return new VouchError(
    'UNAVAILABLE',
    `mirror ${url} answered an HTML page for ${path}: is this the log's URL (the directory that holds checkpoint and tile/)?`,
  );
}

function fileMirror(url: string): Mirror {
  let base: string;
  try {
    base = fileURLToPath(url);
  } catch (error) {
    throw new VouchError('USAGE', `mirror ${url}: not a file URL`, { cause: error });
  }
  return {
    url,
    async get(path, maxBytes) {
      try {
        return await readFileCapped(join(base, path), maxBytes, path);
      } catch (error) {
        if (error instanceof VouchError && error.code === 'PAYLOAD_TOO_LARGE') {
          throw tooLarge(url, path, maxBytes);
        }
        throw unavailable(url, (error as Error).message, error);
      }
    },
  };
}

/** The connection was not open within the connect timeout. */
class ConnectTimeout extends Error {}

/**
 * Over node:http(s) rather than fetch: fetch (undici) has no connect timeout of its own
 * without the undici package, and a request to a host that drops the handshake would
 * wait for the whole body timeout, per request, before the next mirror is tried.
 */
function httpMirror(url: string, options: MirrorOptions): Mirror {
  const base = url.endsWith('/') ? url : `${url}/`;
  const connectTimeoutMs = options.connectTimeoutMs ?? options.timeoutMs;
  // One line at a time about this mirror keeping us waiting, not one per request in flight.
  let waiting = false;
  return {
    url,
    async get(path, maxBytes) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), options.timeoutMs);
      let noticed = false;
      const notice = setTimeout(() => {
        if (waiting) return;
        waiting = noticed = true;
        // The message alone, no fields: one line on the CLI's stderr (pino-pretty puts
        // each field on a line of its own).
        options.logger?.info(
          `waiting for ${path} from mirror ${url}: no answer after ${duration(slowNoticeMs)} (giving up after ${duration(options.timeoutMs)})`,
        );
      }, slowNoticeMs);
      let target = new URL(path, base);
      try {
        for (let redirects = 0; ; redirects++) {
          const response = await send(target, controller.signal, connectTimeoutMs);
          const location = response.headers.location;
          if (!isRedirect(response.statusCode) || location === undefined) {
            return await readBody(url, path, response, maxBytes);
          }
          response.resume();
          if (redirects === maxRedirects) {
            throw unavailable(url, `${path}: more than ${maxRedirects} redirects`);
          }
          target = new URL(location, target);
          if (target.protocol !== 'http:' && target.protocol !== 'https:') {
            throw unavailable(url, `${path}: redirected to ${target.href}, not an http(s) URL`);
          }
        }
      } catch (error) {
        if (error instanceof VouchError) throw error;
        if (controller.signal.aborted) {
          throw unavailable(
            url,
            `${path}: no complete answer within ${duration(options.timeoutMs)}`,
            error,
          );
        }
        const failure = describeFailure(error, target.hostname, connectTimeoutMs);
        throw unavailable(url, `${path}: ${failure}`, error);
      } finally {
        clearTimeout(timer);
        clearTimeout(notice);
        if (noticed) waiting = false;
      }
    },
  };
}

/** One GET, resolved with the response once its headers arrive. */
function send(
  target: URL,
  signal: AbortSignal,
  connectTimeoutMs: number,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, {
      signal,
      // Entry bundles are base64 in JSON: gzip (`vouch log serve` sends it when asked) saves much.
      headers: { 'accept-encoding': 'gzip' },
    });
    request.once('socket', (socket) => {
      if (!socket.connecting) return; // a kept-alive connection, already open
      let timer: NodeJS.Timeout | undefined;
      const start = () => {
        timer = setTimeout(() => request.destroy(new ConnectTimeout()), connectTimeoutMs);
      };
      // From the name's resolution on: a slow resolver is bounded by the body timeout.
      if (isIP(target.hostname.replace(/^\[|\]$/g, ''))) start();
      else socket.once('lookup', start);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    request.once('response', resolve);
    request.once('error', reject);
    request.end();
  });
}

function isRedirect(status: number | undefined): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** The body of a 200 answer, decoded, under `maxBytes`; undefined for 404 and 410. */
async function readBody(
  url: string,
  path: string,
  response: IncomingMessage,
  maxBytes: number,
): Promise<Uint8Array | undefined> {
  const status = response.statusCode ?? 0;
  if (status !== 200) {
    response.resume();
    if (status === 404 || status === 410) return undefined;
    const what = `HTTP ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
    throw unavailable(url, `${path}: ${status >= 500 ? `the server failed (${what})` : what}`);
  }
  if (/^text\/html\b/i.test(response.headers['content-type'] ?? '')) {
    response.resume();
    throw htmlPage(url, path);
  }
  const encoding = (response.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    response.resume();
    throw unavailable(url, `${path}: sent in an encoding not asked for (${encoding})`);
  }
  if (Number(response.headers['content-length'] ?? 0) > maxBytes && encoding === 'identity') {
    response.destroy();
    throw tooLarge(url, path, maxBytes);
  }
  // The cap is on the decoded bytes: a small gzip body can inflate to anything.
  const body: Readable = encoding === 'gzip' ? response.pipe(createGunzip()) : response;
  if (body !== response) response.once('error', (error) => body.destroy(error));
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw tooLarge(url, path, maxBytes);
      chunks.push(chunk);
    }
  } catch (error) {
    // Not read to its end: the connection cannot be kept for the next request.
    response.destroy();
    throw error;
  }
  const bytes = Buffer.concat(chunks);
  if (/^\s*<(!doctype html|html)[\s>]/i.test(bytes.subarray(0, 64).toString('latin1'))) {
    throw htmlPage(url, path);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** What a failed request ran into, in plain words. */
function describeFailure(error: unknown, host: string, connectTimeoutMs: number): string {
  if (error instanceof ConnectTimeout) {
    return `no connection to ${host} within ${duration(connectTimeoutMs)}: the host does not answer (down, or a firewall drops the packets)`;
  }
  const { code, message, address, port } = error as NodeJS.ErrnoException & {
    address?: string;
    port?: number;
  };
  const at = address?.includes(':') ? `[${address}]` : address;
  const where = at === undefined ? host : `${at}${port ? `:${port}` : ''}`;
  switch (code) {
    case 'ENOTFOUND':
      return `there is no host ${host} (DNS)`;
    case 'EAI_AGAIN':
      return `the name ${host} could not be resolved now (DNS)`;
    case 'ECONNREFUSED':
      return `connection refused by ${where}: nothing listens there`;
    case 'ECONNRESET':
      return 'the connection was reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${where} cannot be reached from here (${code})`;
    case 'ETIMEDOUT':
      return `the connection to ${where} timed out`;
    default:
      return code ? `${message} (${code})` : message;
  }
}

/** Milliseconds as people say them: 500 ms, 2 s, 1.5 s. */
function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
}
