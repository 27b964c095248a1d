import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname, isAbsolute } from 'node:path';
import { z } from 'zod';
import { loopbackListen } from '../../config';
import { parseDigest } from '../../core/digest';
import { asVouchError, type ErrorCode, type ErrorKind, VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { fsPath, ioError, makeDirectory, openExistingFile, readOpenFileCapped } from '../../files';
import type { Logger } from '../../logger';
import type { ApiBackend, VerifyRequest } from './backend';
import { statusPageCsp, statusPageHtml } from './status-page';

/**
 * The agent's local API: HTTP/1.1 (node:http) on a Unix socket, which file permissions guard
 * (the socket 0660, its directory 0750); optionally on a loopback TCP port, where every
 * request needs the bearer token (RFC 6750); and optionally on a port for Home Assistant's
 * ingress proxy, which answers its allowed peers only, GET and HEAD only (the status page
 * and what it reads), with no token: a browser behind the proxy has none to send.
 * JSON in and out; errors are
 * `{"error":{"code","message"}}` with the codes of core/errors.ts; `GET /v1/events` is a
 * stream of Server-Sent Events (html.spec.whatwg.org, "Server-sent events").
 */

export interface ApiTimeouts {
  /** Receiving a request's headers (node:http headersTimeout). */
  readonly headersMs: number;
  /**
   * Receiving the whole request, body included (node:http requestTimeout, "for receiving the
   * entire request from the client"). Answering is not bounded by it: Node stops the timer
   * once the body is in, so a sync or the verify of a large file may take its time, and an
   * event stream lasts as long as its client.
   */
  readonly requestMs: number;
  /** An idle kept-alive connection, between requests. */
  readonly keepAliveMs: number;
}

export interface ApiOptions {
  /** The Unix socket's path (api.socket). */
  readonly socket: string;
  /** api.listen: `127.0.0.1:PORT`, `[::1]:PORT` or `localhost:PORT`; needs `token`. */
  readonly listen?: string;
  /** The bearer token (readTokenFile of api.tokenFile). */
  readonly token?: string;
  /** api.ingress: a read-only listener for these peers. */
  readonly ingress?: {
    readonly port: number;
    readonly host: string;
    readonly allow: readonly string[];
  };
  readonly backend: ApiBackend;
  readonly logger: Logger;
  /** The agent's version, for the Server header. */
  readonly version: string;
  /** A comment on each event stream this often, so that idle clients and proxies keep it. */
  readonly heartbeatMs?: number;
  readonly timeouts?: Partial<ApiTimeouts>;
  /** How long requests under way may take to answer once close() is called. */
  readonly closeGraceMs?: number;
}

export interface Api {
  /** Stops accepting, ends the event streams, resolves once the servers are closed and the socket gone. */
  close(): Promise<void>;
}

const defaultTimeouts: ApiTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000 };
const defaultHeartbeatMs = 15_000;
/** The agent exits within 3 s of SIGTERM (docs/agent.md): the API's part of that. */
const defaultCloseGraceMs = 1_000;
/** Bodies are a verify request: a few hundred bytes. Capped while read. */
const maxBodyBytes = 64 * 1024;
/** An event stream's client that leaves this much unsent is not reading: it is dropped. */
const maxStreamBacklogBytes = 1024 * 1024;
/** A token file holds one token and a newline. */
const maxTokenFileBytes = 4096;
/** RFC 6750 §2.1 b64token: what an Authorization header can carry. */
const tokenSyntax = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Shorter is guessable; `openssl rand -hex 32` gives 64. */
const minTokenLength = 16;
/** How long to wait for an answer on a socket file that may be another agent's. */
const probeTimeoutMs = 1_000;

const statusOfKind: Readonly<Record<ErrorKind, number>> = {
  usage: 400,
  data: 422,
  unavailable: 503,
  internal: 500,
  io: 500,
};

/** An error answered with a status of its own, not its kind's (401, 404, 405, 413, 415). */
class HttpError extends VouchError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
  }
}

/**
 * The bearer token in `path` (api.tokenFile), trimmed. Refuses a file that others may read
 * or write (group access is how clients are given it), an empty one, and one that is not a
 * b64token a client could send. A FIFO or device is refused without being opened (files.ts).
 */
export async function readTokenFile(path: string): Promise<string> {
  const what = 'API token file';
  const handle = await openExistingFile(path, what);
  try {
    // fstat the open file, not the path: what we check is what we read.
    const { mode } = await handle.stat();
    if ((mode & 0o007) !== 0) {
      throw new VouchError(
        'CONFIG_INVALID',
        `${what} ${path} is accessible by others (mode ${(mode & 0o777).toString(8)}); run chmod o-rwx ${path}`,
      );
    }
    const bytes = await readOpenFileCapped(handle, path, maxTokenFileBytes, what);
    const token = Buffer.from(bytes).toString('utf8').trim();
    if (token === '') throw new VouchError('CONFIG_INVALID', `${what} ${path} is empty`);
    if (!tokenSyntax.test(token) || token.length < minTokenLength) {
      throw new VouchError(
        'CONFIG_INVALID',
        `${what} ${path}: expected one token of at least ${minTokenLength} characters of ` +
          'A-Z a-z 0-9 - . _ ~ + / (then = only), as RFC 6750 §2.1 allows; e.g. openssl rand -hex 32',
      );
    }
    return token;
  } finally {
    await handle.close();
  }
}

/** api.listen as host and port; loopback only, `localhost` as 127.0.0.1 (not resolved). */
export function parseListen(text: string): { readonly host: string; readonly port: number } {
  const match = loopbackListen.exec(text);
  const port = Number(match?.[2]);
  if (match === null || port > 65_535) {
    throw new VouchError(
      'CONFIG_INVALID',
      `api.listen ${text.slice(0, 100)}: expected 127.0.0.1:PORT, [::1]:PORT or localhost:PORT ` +
        '(the API never listens beyond this device)',
    );
  }
  const host = match[1] === '[::1]' ? '::1' : '127.0.0.1';
  return { host, port };
}

const subjects = ['digest', 'path', 'image'] as const;

const verifySchemas = {
  digest: z.strictObject({
    digest: z
      .string()
      .max(256)
      .refine(
        isDigest,
        'expected sha256:<64 hex>, the 64 hex alone, or merkle-sha256-1mib:<64 hex>',
      ),
  }),
  path: z.strictObject({
    path: z
      .string()
      .max(4096) // PATH_MAX
      .refine(
        (path) => isAbsolute(path) && !path.includes('\0'),
        'expected an absolute path, no NUL',
      ),
  }),
  image: z.strictObject({
    image: z.string().min(1).max(1024),
    deep: z.boolean().default(false),
  }),
};

function isDigest(text: string): boolean {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

/** A `POST /v1/verify` body: exactly one subject, no other key (USAGE otherwise). */
export function parseVerifyRequest(bytes: Uint8Array): VerifyRequest {
  const what = 'POST /v1/verify';
  const json = parseJson(bytes, 'USAGE', `the body of ${what}`);
  const shape = `{"digest":"sha256:…"}, {"path":"/…"} or {"image":"REF","deep":false}`;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new VouchError('USAGE', `${what} takes a JSON object: ${shape}`);
  }
  const given = subjects.filter((key) => key in json);
  const [subject] = given;
  if (subject === undefined || given.length > 1) {
    throw new VouchError(
      'USAGE',
      `${what} takes exactly one of digest, path, image (${given.length > 1 ? `got ${given.join(', ')}` : 'got none'}): ${shape}`,
    );
  }
  const parsed = verifySchemas[subject].safeParse(json);
  if (!parsed.success) {
    throw new VouchError('USAGE', `${what}: ${describeIssues(parsed.error)}`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function isJson(contentType: string): boolean {
  return contentType.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/** Whether `path` is a socket something answers on: another agent, or a stale file. */
function probeSocket(path: string): Promise<'live' | 'stale'> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const done = (result: 'live' | 'stale') => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    // A listener whose backlog is full may leave a connect hanging: it is there.
    const timer = setTimeout(() => done('live'), probeTimeoutMs);
    socket.once('connect', () => done('live'));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') done('stale');
      else if (error.code === 'EAGAIN') done('live');
      else {
        clearTimeout(timer);
        reject(ioError('check the API socket', path, error));
      }
    });
  });
}

/**
 * Readies `path` for listening: its directory made (0750) when missing, a socket file left
 * by an agent that died removed, and a refusal when a process answers there.
 */
async function prepareSocket(path: string): Promise<void> {
  const dir = dirname(path);
  const made = !existsSync(fsPath(dir));
  await makeDirectory(dir);
  // Only a directory made here: one that exists (systemd's RuntimeDirectory=) keeps its mode.
  if (made)
    await chmod(fsPath(dir), 0o750).catch((error) => Promise.reject(ioError('chmod', dir, error)));
  const found = await lstat(fsPath(path)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw ioError('read', path, error);
  });
  if (found === undefined) return;
  if (!found.isSocket()) {
    throw new VouchError('FILE_EXISTS', `${path} exists and is not a socket; not replacing it`);
  }
  if ((await probeSocket(path)) === 'live') {
    throw new VouchError(
      'UNAVAILABLE',
      `another process answers on ${path}: is a vouch agent running already?`,
    );
  }
  await unlink(fsPath(path)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw ioError('remove the stale socket', path, error);
  });
}

function listen(
  server: Server,
  target: { readonly path: string } | { readonly host: string; readonly port: number },
  shown: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) =>
      reject(
        new VouchError('UNAVAILABLE', `cannot listen on ${shown}: ${error.message}`, {
          cause: error,
        }),
      );
    server.once('error', failed);
    server.listen(target, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    // An error here says it was not listening: closed all the same.
    server.close(() => resolve());
  });
}

type Handler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

/** Who a listener answers: its socket's users, bearers of the token, the ingress proxy's peers. */
type Access = 'socket' | 'token' | 'ingress';

/** The only methods the ingress listener answers: they change nothing (RFC 9110 §9.2.1). */
const readOnlyMethods = new Set(['GET', 'HEAD']);

/** A peer's address as given: an IPv4 peer of a dual-stack socket is `::ffff:a.b.c.d`. */
function peerAddress(request: IncomingMessage): string {
  const address = request.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** The status page, encoded once. */
const statusPage = Buffer.from(statusPageHtml);

/** Starts the API; rejects (and leaves nothing listening) when a listener cannot start. */
export async function startApi(options: ApiOptions): Promise<Api> {
  const { backend, logger } = options;
  const timeouts = { ...defaultTimeouts, ...options.timeouts };
  const heartbeatMs = options.heartbeatMs ?? defaultHeartbeatMs;
  const tcp = options.listen === undefined ? undefined : parseListen(options.listen);
  if (tcp !== undefined && options.token === undefined) {
    throw new VouchError(
      'CONFIG_INVALID',
      'api.listen needs api.tokenFile: the TCP port takes only requests with the bearer token',
    );
  }
  const tokenDigest = options.token === undefined ? undefined : sha256(options.token);
  const { ingress } = options;
  const ingressPeers = new Set(ingress?.allow);
  /** Ends each open event stream. */
  const streams = new Set<() => void>();
  let stopping = false;

  /** An answer whose body is whole: the headers every answer carries, and `headers`. */
  function send(
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    body: Buffer | string,
    headers: Readonly<Record<string, string>>,
  ): void {
    // A body left unread (refused, or cut at the cap) is not read on to reach a next request:
    // the connection ends with this answer. So does every answer once close() is called.
    // (A request that declares no body has none to read, complete or not yet.)
    const hasBody =
      request.headers['content-length'] !== undefined ||
      request.headers['transfer-encoding'] !== undefined;
    const last = stopping || (hasBody && !request.complete);
    response.writeHead(status, {
      ...headers,
      'Content-Length': String(Buffer.byteLength(body)),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      Server: `vouch/${options.version}`,
      ...(last ? { Connection: 'close' } : {}),
    });
    response.end(body);
  }

  function sendJson(
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    value: unknown,
    headers: Readonly<Record<string, string>> = {},
  ): void {
    const body = `${JSON.stringify(value) ?? 'null'}\n`;
    send(request, response, status, body, { ...headers, 'Content-Type': 'application/json' });
  }

  /** The body of a POST, at most maxBodyBytes; its content type JSON when `json`, else none or JSON. */
  function readBody(request: IncomingMessage, json: boolean): Promise<Buffer> {
    const type = request.headers['content-type'];
    if (type === undefined ? json : !isJson(type)) {
      throw new HttpError(
        415,
        'USAGE',
        `${request.method} ${pathOf(request)} takes a body of type application/json${type === undefined ? '' : `, not ${type.slice(0, 100)}`}`,
      );
    }
    const tooLarge = () =>
      new HttpError(413, 'PAYLOAD_TOO_LARGE', `request bodies are at most ${maxBodyBytes} bytes`);
    if (Number(request.headers['content-length']) > maxBodyBytes) throw tooLarge();
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const settle = (error?: Error) => {
        request.off('data', onData);
        request.off('end', onEnd);
        request.off('close', onClose);
        request.off('error', settle);
        if (error) reject(error);
        else resolve(Buffer.concat(chunks, total));
      };
      const onData = (chunk: Buffer) => {
        total += chunk.length;
        if (total > maxBodyBytes) {
          // Stop reading: the answer closes the connection (sendJson).
          request.pause();
          settle(tooLarge());
        } else chunks.push(chunk);
      };
      const onEnd = () => settle();
      const onClose = () =>
        settle(new VouchError('USAGE', 'the client left before the body ended'));
      request.on('data', onData);
      request.once('end', onEnd);
      request.once('close', onClose);
      request.once('error', settle);
    });
  }

  /** `GET /v1/events`: each event as `event: TYPE` and `data: JSON`, a comment as heartbeat. */
  async function events(_request: IncomingMessage, response: ServerResponse): Promise<void> {
    response.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      Server: `vouch/${options.version}`,
      // The stream is this connection's last answer: ending it ends the connection.
      Connection: 'close',
    });
    response.flushHeaders();
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      unsubscribe();
      clearInterval(heartbeat);
      streams.delete(end);
    };
    const end = () => {
      stop();
      response.end();
    };
    const write = (text: string) => {
      if (stopped || response.destroyed) return;
      // Past the cap the client is not reading: drop it rather than hold its events.
      if (!response.write(text) && response.writableLength > maxStreamBacklogBytes) {
        logger.warn(
          { backlog: response.writableLength },
          'dropped an event stream client that does not read',
        );
        stop();
        response.destroy();
      }
    };
    // JSON.stringify escapes line breaks: the event is one data line.
    const unsubscribe = backend.events.subscribe((event) =>
      write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`),
    );
    const heartbeat = setInterval(() => write(': keep-alive\n\n'), heartbeatMs);
    streams.add(end);
    response.once('close', stop);
  }

  /** `GET /` (and HEAD: node:http leaves the body out): the status page. */
  const page: Handler = async (request, response) =>
    send(request, response, 200, statusPage, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': statusPageCsp,
      'Referrer-Policy': 'no-referrer',
    });

  const routes = new Map<string, Readonly<Record<string, Handler>>>([
    ['/', { GET: page, HEAD: page }],
    [
      '/v1/status',
      {
        GET: async (request, response) => sendJson(request, response, 200, await backend.status()),
      },
    ],
    [
      '/v1/verify',
      {
        POST: async (request, response) => {
          const verifyRequest = parseVerifyRequest(await readBody(request, true));
          sendJson(request, response, 200, await backend.verify(verifyRequest));
        },
      },
    ],
    [
      '/v1/verdicts',
      {
        GET: async (request, response) =>
          sendJson(request, response, 200, await backend.verdicts()),
      },
    ],
    [
      '/v1/sync',
      {
        POST: async (request, response) => {
          // Read (capped) and ignored, so that the connection can carry the next request.
          await readBody(request, false);
          sendJson(request, response, 200, await backend.sync());
        },
      },
    ],
    ['/v1/events', { GET: events }],
    [
      '/metrics',
      {
        GET: async (request, response) => {
          const { body, contentType } = await backend.metrics.text();
          send(request, response, 200, body, { 'Content-Type': contentType });
        },
      },
    ],
    [
      '/healthz',
      {
        GET: async (request, response) => {
          const { ok, services } = backend.healthz();
          sendJson(request, response, ok ? 200 : 503, { ok, services });
        },
      },
    ],
  ]);
  const routeList = [...routes]
    .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`))
    .join(', ');

  function authorize(request: IncomingMessage): void {
    if (tokenDigest === undefined) return;
    const header = request.headers.authorization;
    // RFC 6750 §2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
    const token = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '')?.[1];
    // Digests: equal lengths for timingSafeEqual, and nothing told of the token's length.
    if (token !== undefined && timingSafeEqual(sha256(token), tokenDigest)) return;
    throw new HttpError(
      401,
      'USAGE',
      header === undefined
        ? 'this port takes requests with the bearer token of api.tokenFile (Authorization: Bearer …)'
        : 'the bearer token is not the one in api.tokenFile',
      // RFC 6750 §3: the challenge; invalid_token when one was sent.
      {
        'WWW-Authenticate':
          header === undefined
            ? 'Bearer realm="vouch"'
            : 'Bearer realm="vouch", error="invalid_token"',
      },
    );
  }

  /** The ingress listener's rules: its allowed peers, and nothing that changes anything. */
  function admitToIngress(request: IncomingMessage, allow: ReadonlySet<string>): void {
    const peer = peerAddress(request);
    if (!allow.has(peer)) {
      throw new HttpError(403, 'USAGE', `this port answers api.ingress.allow only, not ${peer}`);
    }
    if (!readOnlyMethods.has(request.method ?? '')) {
      throw new HttpError(
        405,
        'USAGE',
        `this port is read-only (GET, HEAD): ${request.method} goes to the API socket`,
        { Allow: 'GET, HEAD' },
      );
    }
  }

  async function answer(request: IncomingMessage, response: ServerResponse, access: Access) {
    if (stopping) throw new VouchError('UNAVAILABLE', 'the agent is stopping');
    if (access === 'token') authorize(request);
    if (access === 'ingress') admitToIngress(request, ingressPeers);
    const path = pathOf(request);
    const methods = routes.get(path);
    if (methods === undefined) {
      throw new HttpError(404, 'USAGE', `no route ${path.slice(0, 200)}; the routes: ${routeList}`);
    }
    const handler = methods[request.method ?? ''];
    if (handler === undefined) {
      const allow = Object.keys(methods).join(', ');
      throw new HttpError(405, 'USAGE', `${path} takes ${allow}, not ${request.method}`, {
        Allow: allow,
      });
    }
    await handler(request, response);
  }

  function fail(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    const failure = asVouchError(error);
    if (failure.kind === 'internal') {
      logger.error(
        { code: failure.code, err: failure.cause ?? failure },
        `${request.method} ${pathOf(request).slice(0, 200)} failed: ${failure.message}`,
      );
    }
    if (response.headersSent || response.destroyed) {
      // An event stream, an answer half sent, or a connection gone (Node's 408 ends it).
      response.destroy();
      return;
    }
    const status = failure instanceof HttpError ? failure.status : statusOfKind[failure.kind];
    const headers = failure instanceof HttpError ? failure.headers : {};
    const body = { error: { code: failure.code, message: failure.message } };
    sendJson(request, response, status, body, headers);
  }

  function handlerFor(access: Access) {
    return (request: IncomingMessage, response: ServerResponse) => {
      const started = process.hrtime.bigint();
      const path = pathOf(request);
      const route = routes.has(path) ? path : 'other';
      const method = request.method ?? '';
      response.once('close', () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        // nginx's 499: the client went away before it was answered.
        const code = response.headersSent ? response.statusCode : 499;
        backend.metrics.recordRequest(route, method, code, seconds);
        logger.debug(
          {
            method,
            route,
            ...(route === 'other' ? { path: path.slice(0, 200) } : {}),
            code,
            seconds,
          },
          'API request',
        );
      });
      answer(request, response, access).catch((error: unknown) => fail(request, response, error));
    };
  }

  function newServer(access: Access): Server {
    const server = createServer(
      {
        headersTimeout: timeouts.headersMs,
        requestTimeout: timeouts.requestMs,
        keepAliveTimeout: timeouts.keepAliveMs,
        // Node checks those timeouts this often (default 30 s, which would stretch them).
        connectionsCheckingInterval: Math.min(1_000, timeouts.headersMs / 2),
      },
      handlerFor(access),
    );
    return server;
  }

  const servers: Server[] = [];

  async function shutdown(): Promise<void> {
    stopping = true;
    for (const end of streams) end();
    const closed = Promise.all(servers.map(closeServer));
    for (const server of servers) server.closeIdleConnections();
    // Requests under way (a verify, a sync) have a moment to answer; then their connections go.
    const grace = setTimeout(() => {
      for (const server of servers) server.closeAllConnections();
    }, options.closeGraceMs ?? defaultCloseGraceMs);
    // Closing the Unix socket's server removes its file (libuv unlinks it).
    await closed;
    clearTimeout(grace);
  }

  try {
    await prepareSocket(options.socket);
    const local = newServer('socket');
    servers.push(local);
    await listen(local, { path: options.socket }, options.socket);
    // Clients are the agent's group; the directory (0750) keeps the rest out from the start.
    await chmod(fsPath(options.socket), 0o660).catch((error) =>
      Promise.reject(ioError('chmod', options.socket, error)),
    );
    if (tcp !== undefined) {
      const remote = newServer('token');
      servers.push(remote);
      await listen(remote, tcp, options.listen as string);
    }
    if (ingress !== undefined) {
      const proxied = newServer('ingress');
      servers.push(proxied);
      await listen(proxied, ingress, `api.ingress ${ingress.host} port ${ingress.port}`);
    }
  } catch (error) {
    await shutdown();
    throw error;
  }
  for (const server of servers) {
    server.on('error', (error) => logger.error({ err: error }, `API server: ${error.message}`));
  }
  logger.info(
    { socket: options.socket, listen: options.listen, ingress: ingress?.port },
    'API listening',
  );
  let closing: Promise<void> | undefined;
  return {
    close: () => {
      closing ??= shutdown();
      return closing;
    },
  };
}

/** The request's path, without its query. */
function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
