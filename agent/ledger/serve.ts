import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { maxEnvelopeBytes } from '../core/dsse';
import { VouchError } from '../core/errors';
import { rootPath, rootVersionOfPath } from '../core/layout';
import { hashSize } from '../core/merkle';
import { maxNoteSize } from '../core/note';
import { fullWidth, maxBundleBytes, parseTilePath } from '../core/tiles';
import { fsPath } from '../files';
import { layout, publicDir, readConfig } from './logdir';

export interface LogServer {
  /** `http://host:port/`, with the port the system chose when asked for 0. */
  readonly url: string;
  close(): Promise<void>;
}

/** The largest file served: a full entry bundle of maximal entries. */
const maxFileBytes = maxBundleBytes(fullWidth);
const gzipAsync = promisify(gzip);

interface Resource {
  readonly file: string;
  readonly type: string;
  readonly cache: string;
  readonly maxBytes: number;
  readonly compress: boolean;
}

/**
 * Maps a request path to a file of public/, or undefined for 404. Only the names
 * c2sp.org/tlog-tiles defines exist (and `roots/<V>.json`, see roots.ts), parsed strictly, so there is no directory listing
 * and no way out of public/ (`..`, `%2e`, `//` and friends simply do not parse).
 */
function resourceFor(path: string): Resource | undefined {
  if (path === `/${layout.checkpoint}`) {
    // tlog-tiles §Checkpoints: mutable, so no caching beyond a few seconds.
    return {
      file: layout.checkpoint,
      type: 'text/plain; charset=utf-8',
      cache: 'no-cache',
      maxBytes: maxNoteSize,
      compress: false,
    };
  }
  const root = rootVersionOfPath(path.slice(1));
  if (root !== undefined) {
    // A published root version never changes (roots.ts), but it is small: a day of caching.
    return {
      file: rootPath(root),
      type: 'application/json',
      cache: 'public, max-age=86400',
      maxBytes: maxEnvelopeBytes,
      compress: false,
    };
  }
  let parsed: ReturnType<typeof parseTilePath>;
  try {
    parsed = parseTilePath(path.slice(1));
  } catch {
    return undefined;
  }
  const full = parsed.tile.width === fullWidth;
  const entries = parsed.kind === 'entries';
  return {
    file: path.slice(1),
    type: 'application/octet-stream',
    // Tiles never change. A full one is immutable for good; a partial one may be pruned
    // once the full tile is there (tlog-tiles §Partial Tiles), so caches keep it a day.
    cache: full ? 'public, max-age=31536000, immutable' : 'public, max-age=86400',
    maxBytes: entries ? maxFileBytes : fullWidth * hashSize,
    // tlog-tiles §Log entries: entry bundles SHOULD be compressed at the HTTP layer.
    compress: entries,
  };
}

async function readResource(root: string, resource: Resource): Promise<Buffer | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // Regular files only: the publisher writes no links, so a symlink is not ours to serve.
    handle = await open(
      fsPath(join(root, resource.file)),
      constants.O_RDONLY | constants.O_NOFOLLOW,
    );
  } catch {
    return undefined;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile() || stat.size > resource.maxBytes) return undefined;
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function send(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: Uint8Array,
): void {
  response.writeHead(status, {
    ...headers,
    'Content-Length': String(body.length),
    'X-Content-Type-Options': 'nosniff',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

async function handle(root: string, request: IncomingMessage, response: ServerResponse) {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    send(
      request,
      response,
      405,
      { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' },
      Buffer.from('method not allowed\n'),
    );
    return;
  }
  const path = (request.url ?? '').split('?')[0] as string;
  const resource = resourceFor(path);
  const body = resource && (await readResource(root, resource));
  if (!resource || !body) {
    send(
      request,
      response,
      404,
      { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache' },
      Buffer.from('not found\n'),
    );
    return;
  }
  const headers: Record<string, string> = {
    'Content-Type': resource.type,
    'Cache-Control': resource.cache,
  };
  if (resource.compress) {
    headers.Vary = 'Accept-Encoding';
    if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
      headers['Content-Encoding'] = 'gzip';
      send(request, response, 200, headers, await gzipAsync(body));
      return;
    }
  }
  send(request, response, 200, headers, body);
}

/**
 * Serves the log's public/ directory over HTTP as c2sp.org/tlog-tiles: GET and HEAD of
 * `checkpoint`, `tile/…`, `tile/entries/…` and `roots/<V>.json`; everything else is 404 (405 for other
 * methods). Listens on 127.0.0.1 unless told otherwise.
 */
export async function serveLog(
  dir: string,
  listen: { readonly host?: string; readonly port: number },
): Promise<LogServer> {
  await readConfig(dir);
  const root = publicDir(dir);
  const server = createServer((request, response) => {
    handle(root, request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain' });
      response.end();
    });
  });
  const host = listen.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(
        new VouchError('UNAVAILABLE', `cannot listen on ${host}:${listen.port}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    server.listen(listen.port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
