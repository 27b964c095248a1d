import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ErrorCode, VouchError } from '../../../agent/core/errors';
import {
  type Api,
  type ApiOptions,
  parseListen,
  readTokenFile,
  startApi,
} from '../../../agent/device/agent/api';
import type { ApiBackend, VerifyRequest } from '../../../agent/device/agent/backend';
import { AgentEvents, type Stamped } from '../../../agent/device/agent/events';
import { AgentMetrics } from '../../../agent/device/agent/metrics';
import { freePort } from '../../../scripts/lib/services';
import { rejectsWith } from '../../helpers/errors';
import { call, type Reply, type Target } from '../../helpers/http';

/**
 * The agent's local API over real sockets (a Unix socket in a temp directory, a loopback
 * TCP port), with a backend of the test's own on the real event bus and metrics.
 */

/** The real event bus, counting its subscribers: an API client that left must not be one. */
class CountingEvents extends AgentEvents {
  subscribers = 0;

  override subscribe(listener: (event: Stamped) => void): () => void {
    this.subscribers += 1;
    const off = super.subscribe(listener);
    return () => {
      this.subscribers -= 1;
      off();
    };
  }
}

class TestBackend implements ApiBackend {
  readonly events = new CountingEvents();
  readonly metrics = new AgentMetrics({
    verdictCounts: () => ({ TRUSTED: 2 }),
    lastSyncSuccess: () => undefined,
    logSize: () => 42,
  });
  readonly verified: VerifyRequest[] = [];
  /** What status() and verify() throw, when set. */
  failure: unknown;
  /** How long verify() and sync() take. */
  delayMs = 0;
  /** verify() never answers. */
  stuck = false;
  /** verify() calls that have started. */
  calls = 0;
  healthy = true;

  async status(): Promise<unknown> {
    if (this.failure !== undefined) throw this.failure;
    return { version: 'test', size: 42 };
  }

  async verify(request: VerifyRequest): Promise<unknown> {
    this.calls += 1;
    if (this.failure !== undefined) throw this.failure;
    if (this.stuck) await new Promise(() => {});
    await sleep(this.delayMs);
    this.verified.push(request);
    return { status: 'TRUSTED', request };
  }

  async verdicts(): Promise<unknown> {
    return [{ subject: 'sha256:ab', status: 'TRUSTED' }];
  }

  async sync(): Promise<unknown> {
    await sleep(this.delayMs);
    return { ok: true, added: 3 };
  }

  healthz() {
    const since = '2026-01-01T00:00:00Z';
    return {
      ok: this.healthy,
      services: {
        sync: { state: 'ok' as const, reason: 'synced', since },
        docker: this.healthy
          ? { state: 'ok' as const, reason: 'following', since }
          : { state: 'failed' as const, reason: 'no Docker', since },
      },
    };
  }
}

const json = { 'Content-Type': 'application/json' };

function post(target: Target, path: string, body: unknown): Promise<Reply> {
  return call(target, 'POST', path, { body: JSON.stringify(body), headers: json });
}

function errorOf(reply: Reply): { code: string; message: string } {
  return (JSON.parse(reply.body) as { error: { code: string; message: string } }).error;
}

/** An open `GET /v1/events`: the text received so far, and its events. */
interface EventStream {
  readonly response: IncomingMessage;
  text: string;
  events(): { type: string; data: Record<string, unknown> }[];
  close(): void;
}

function openEvents(target: Target, headers: Record<string, string> = {}): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path: '/v1/events', headers, agent: false }, (response) => {
      const stream: EventStream = {
        response,
        text: '',
        events: () =>
          stream.text
            .split('\n\n')
            .filter((block) => block.startsWith('event: '))
            .map((block) => {
              const [event, data] = block.split('\n') as [string, string];
              expect(data).toMatch(/^data: /);
              return {
                type: event.slice('event: '.length),
                data: JSON.parse(data.slice('data: '.length)),
              };
            }),
        close: () => req.destroy(),
      };
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        stream.text += chunk;
      });
      response.on('error', () => {});
      resolve(stream);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A logger whose lines the test reads. */
function capture(): { logger: ApiOptions['logger']; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return { logger, lines };
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'vouch-api-'));
}

/** A token of the right shape. */
const token = 'aaaabbbbccccdddd0123456789abcdef';
const digest = `sha256:${'5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03'}`;

describe('the API on its Unix socket', () => {
  const backend = new TestBackend();
  const { logger, lines } = capture();
  let socketPath: string;
  let api: Api;
  let target: Target;

  beforeAll(async () => {
    socketPath = join(await tempDir(), 'run', 'vouch', 'api.sock');
    api = await startApi({
      socket: socketPath,
      backend,
      logger,
      version: '1.2.3',
      heartbeatMs: 50,
    });
    target = { socketPath };
  });
  afterAll(async () => {
    await api.close();
  });

  it('makes the socket 0660 in a new directory made 0750', async () => {
    expect((await lstat(socketPath)).isSocket()).toBe(true);
    expect((await lstat(socketPath)).mode & 0o777).toBe(0o660);
    expect((await stat(join(socketPath, '..'))).mode & 0o777).toBe(0o750);
  });

  it('answers GET /v1/status with the backend status, no token asked', async () => {
    const reply = await call(target, 'GET', '/v1/status');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers.server).toBe('vouch/1.2.3');
    expect(JSON.parse(reply.body)).toEqual({ version: 'test', size: 42 });
  });

  it('answers POST /v1/verify for each kind of subject', async () => {
    const asked: VerifyRequest[] = [
      { digest },
      { path: '/usr/lib/app.tgz' },
      { image: 'ghcr.io/home-assistant/home-assistant:2025.6.0', deep: true },
    ];
    for (const body of asked) {
      const reply = await post(target, '/v1/verify', body);
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toEqual({ status: 'TRUSTED', request: body });
    }
    // deep is optional, false when left out.
    const reply = await post(target, '/v1/verify', { image: 'ubuntu' });
    expect(JSON.parse(reply.body).request).toEqual({ image: 'ubuntu', deep: false });
    // A charset parameter is still JSON.
    const charset = await call(target, 'POST', '/v1/verify', {
      body: JSON.stringify({ digest }),
      headers: { 'Content-Type': 'Application/JSON; charset=utf-8' },
    });
    expect(charset.status).toBe(200);
    expect(backend.verified.slice(-5)).toEqual([
      ...asked,
      { image: 'ubuntu', deep: false },
      { digest },
    ]);
  });

  it('answers GET /v1/verdicts and POST /v1/sync, with or without a body', async () => {
    const verdicts = await call(target, 'GET', '/v1/verdicts');
    expect(verdicts.status).toBe(200);
    expect(JSON.parse(verdicts.body)).toEqual([{ subject: 'sha256:ab', status: 'TRUSTED' }]);
    const bare = await call(target, 'POST', '/v1/sync');
    expect(bare.status).toBe(200);
    expect(JSON.parse(bare.body)).toEqual({ ok: true, added: 3 });
    expect((await post(target, '/v1/sync', {})).status).toBe(200);
  });

  it('answers GET /metrics in the Prometheus text format, requests counted by route', async () => {
    await call(target, 'GET', '/v1/status');
    await call(target, 'GET', '/nowhere');
    const reply = await call(target, 'GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(reply.body).toMatch(
      /^vouch_api_requests_total\{route="\/v1\/status",method="GET",code="200"\} [1-9]/m,
    );
    expect(reply.body).toMatch(
      /^vouch_api_requests_total\{route="other",method="GET",code="404"\} 1$/m,
    );
    expect(reply.body).toMatch(/^vouch_log_size 42$/m);
  });

  it('answers GET /healthz 200 when healthy, 503 with the same body when not', async () => {
    const ok = await call(target, 'GET', '/healthz');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ ok: true, services: { docker: { state: 'ok' } } });
    backend.healthy = false;
    try {
      const failed = await call(target, 'GET', '/healthz');
      expect(failed.status).toBe(503);
      expect(JSON.parse(failed.body)).toEqual({ ok: false, services: backend.healthz().services });
    } finally {
      backend.healthy = true;
    }
  });

  it('refuses bad verify bodies with 400 USAGE, naming the problem', async () => {
    const cases: [string, RegExp][] = [
      ['{"digest":', /not valid JSON/],
      ['[]', /takes a JSON object/],
      ['{}', /exactly one of digest, path, image \(got none\)/],
      [JSON.stringify({ digest, path: '/a' }), /exactly one .*got digest, path/],
      [JSON.stringify({ digest, extra: 1 }), /Unrecognized key: "extra"/],
      [JSON.stringify({ path: '/a', deep: true }), /Unrecognized key: "deep"/],
      [JSON.stringify({ path: 'relative/app.tgz' }), /path: expected an absolute path/],
      [JSON.stringify({ digest: 'sha256:abc' }), /digest: expected sha256:<64 hex>/],
      [JSON.stringify({ image: 'ubuntu', deep: 'yes' }), /deep: /],
      [JSON.stringify({ image: '' }), /image: /],
    ];
    const before = backend.verified.length;
    for (const [body, message] of cases) {
      const reply = await call(target, 'POST', '/v1/verify', { body, headers: json });
      expect(reply.status, body).toBe(400);
      expect(errorOf(reply).code).toBe('USAGE');
      expect(errorOf(reply).message, body).toMatch(message);
    }
    expect(backend.verified.length).toBe(before);
  });

  it('answers 413 to a body over 64 KiB, declared or not, and serves on', async () => {
    const body = JSON.stringify({ path: `/${'a'.repeat(100 * 1024)}` });
    for (const chunked of [false, true]) {
      const reply = await call(target, 'POST', '/v1/verify', { body, headers: json, chunked });
      expect(reply.status).toBe(413);
      expect(reply.headers.connection).toBe('close');
      expect(errorOf(reply)).toEqual({
        code: 'PAYLOAD_TOO_LARGE',
        message: 'request bodies are at most 65536 bytes',
      });
      expect((await call(target, 'GET', '/v1/status')).status).toBe(200);
    }
  });

  it('answers 405 with Allow to a known path with another method', async () => {
    const reply = await call(target, 'GET', '/v1/verify');
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('POST');
    expect(errorOf(reply)).toEqual({ code: 'USAGE', message: '/v1/verify takes POST, not GET' });
    const del = await call(target, 'DELETE', '/v1/status');
    expect(del.status).toBe(405);
    expect(del.headers.allow).toBe('GET');
  });

  it('answers 404 to an unknown path, listing the routes', async () => {
    const reply = await call(target, 'GET', '/v2/status?x=1');
    expect(reply.status).toBe(404);
    expect(errorOf(reply).code).toBe('USAGE');
    expect(errorOf(reply).message).toBe(
      'no route /v2/status; the routes: GET /, HEAD /, GET /v1/status, POST /v1/verify, ' +
        'GET /v1/verdicts, POST /v1/sync, GET /v1/events, GET /metrics, GET /healthz',
    );
    // The query is not part of the path.
    expect((await call(target, 'GET', '/v1/status?pretty')).status).toBe(200);
  });

  it('answers 415 to a POST body that is not application/json', async () => {
    const body = JSON.stringify({ digest });
    const types: Record<string, string>[] = [{ 'Content-Type': 'text/plain' }, {}];
    for (const headers of types) {
      const reply = await call(target, 'POST', '/v1/verify', { body, headers });
      expect(reply.status).toBe(415);
      expect(errorOf(reply).code).toBe('USAGE');
      expect(errorOf(reply).message).toMatch(
        /^POST \/v1\/verify takes a body of type application\/json/,
      );
    }
    const form = await call(target, 'POST', '/v1/sync', {
      body: 'a=1',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
  });

  it("maps a backend's VouchError to a status by its kind", async () => {
    const cases: [ErrorCode, number][] = [
      ['USAGE', 400],
      ['NO_TRUST_ROOT', 400],
      ['BAD_DATA', 422],
      ['IMAGE_NOT_FOUND', 422],
      ['NO_TRUST_STATE', 503],
      ['STATE_LOCKED', 503],
      ['INTERNAL', 500],
      ['IO', 500],
    ];
    try {
      for (const [code, status] of cases) {
        backend.failure = new VouchError(code, `failed with ${code}`);
        for (const reply of [
          await call(target, 'GET', '/v1/status'),
          await post(target, '/v1/verify', { digest }),
        ]) {
          expect(reply.status, code).toBe(status);
          expect(errorOf(reply)).toEqual({ code, message: `failed with ${code}` });
        }
      }
      backend.failure = new TypeError('x is not a function');
      const reply = await call(target, 'GET', '/v1/status');
      expect(reply.status).toBe(500);
      expect(errorOf(reply)).toEqual({ code: 'INTERNAL', message: 'x is not a function' });
    } finally {
      backend.failure = undefined;
    }
    // Internal errors are logged as errors; the rest only as requests, at debug.
    const errors = lines.filter((line) => line.level === 50).map((line) => line.msg);
    expect(errors).toEqual([
      'GET /v1/status failed: failed with INTERNAL',
      'POST /v1/verify failed: failed with INTERNAL',
      'GET /v1/status failed: x is not a function',
    ]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 20,
        msg: 'API request',
        method: 'GET',
        route: '/v1/status',
        code: 503,
      }),
    );
  });

  it('streams events in order as Server-Sent Events, with heartbeats', async () => {
    const stream = await openEvents(target);
    expect(stream.response.statusCode).toBe(200);
    expect(stream.response.headers['content-type']).toBe('text/event-stream');
    expect(stream.response.headers['cache-control']).toBe('no-cache');
    await vi.waitFor(() => expect(backend.events.subscribers).toBe(1));
    const health = { state: 'degraded' as const, reason: 'no mirror\nanswered', since: 'x' };
    backend.events.publish({ type: 'health', service: 'sync', health });
    backend.events.publish({
      type: 'sync',
      via: 'inbox',
      ok: true,
      source: '/media/usb/s.tar',
      size: 9,
      added: 2,
    });
    backend.events.publish({ type: 'health', service: 'docker', health });
    await vi.waitFor(() => expect(stream.events()).toHaveLength(3));
    const events = stream.events();
    expect(events.map((event) => event.type)).toEqual(['health', 'sync', 'health']);
    expect(events[0]?.data).toMatchObject({ type: 'health', service: 'sync', health });
    expect(events[0]?.data.at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(events[2]?.data).toMatchObject({ service: 'docker' });
    await vi.waitFor(() => expect(stream.text).toContain(': keep-alive\n\n'));

    stream.close();
    await vi.waitFor(() => expect(backend.events.subscribers).toBe(0));
    // The bus carries on without it.
    const later = await openEvents(target);
    await vi.waitFor(() => expect(backend.events.subscribers).toBe(1));
    backend.events.publish({ type: 'health', service: 'mqtt', health });
    await vi.waitFor(() => expect(later.events()).toHaveLength(1));
    later.close();
    await vi.waitFor(() => expect(backend.events.subscribers).toBe(0));
  });

  it('drops an event stream client that does not read, past the backlog cap', async () => {
    const stream = await openEvents(target);
    await vi.waitFor(() => expect(backend.events.subscribers).toBe(1));
    stream.response.pause();
    const health = { state: 'ok' as const, reason: 'x'.repeat(64 * 1024), since: 'x' };
    for (let i = 0; i < 64 && backend.events.subscribers > 0; i++) {
      backend.events.publish({ type: 'health', service: 'sync', health });
      // Let the socket take what the kernel will hold.
      await sleep(1);
    }
    expect(backend.events.subscribers).toBe(0);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        msg: 'dropped an event stream client that does not read',
      }),
    );
    stream.close();
    expect((await call(target, 'GET', '/v1/status')).status).toBe(200);
  });
});

describe('the API on a loopback TCP port', () => {
  const backend = new TestBackend();
  let api: Api;
  let port: number;
  let socketPath: string;

  beforeAll(async () => {
    port = await freePort();
    socketPath = join(await tempDir(), 'api.sock');
    api = await startApi({
      socket: socketPath,
      listen: `127.0.0.1:${port}`,
      token,
      backend,
      logger: pino({ level: 'silent' }),
      version: '1',
    });
  });
  afterAll(async () => {
    await api.close();
  });

  it('answers 401 without the bearer token', async () => {
    for (const path of ['/v1/status', '/metrics', '/healthz', '/nowhere']) {
      const reply = await call({ host: '127.0.0.1', port }, 'GET', path);
      expect(reply.status, path).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Bearer realm="vouch"');
      expect(errorOf(reply).code).toBe('USAGE');
    }
    const events = await openEvents({ host: '127.0.0.1', port });
    expect(events.response.statusCode).toBe(401);
    expect(backend.events.subscribers).toBe(0);
  });

  it('answers 401 with a wrong token, of any length', async () => {
    for (const wrong of [`${token.slice(0, -1)}e`, 'short', `${token}x`, token.toUpperCase()]) {
      const reply = await call({ host: '127.0.0.1', port }, 'GET', '/v1/status', {
        headers: { Authorization: `Bearer ${wrong}` },
      });
      expect(reply.status, wrong).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Bearer realm="vouch", error="invalid_token"');
    }
    const basic = await call({ host: '127.0.0.1', port }, 'GET', '/v1/status', {
      headers: { Authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` },
    });
    expect(basic.status).toBe(401);
  });

  it('answers with the right token (scheme in any case); the Unix socket needs none', async () => {
    for (const scheme of ['Bearer', 'bearer']) {
      const reply = await call({ host: '127.0.0.1', port }, 'GET', '/v1/status', {
        headers: { Authorization: `${scheme} ${token}` },
      });
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toEqual({ version: 'test', size: 42 });
    }
    const verify = await call({ host: '127.0.0.1', port }, 'POST', '/v1/verify', {
      body: JSON.stringify({ digest }),
      headers: { ...json, Authorization: `Bearer ${token}` },
    });
    expect(verify.status).toBe(200);
    expect((await call({ socketPath }, 'GET', '/v1/status')).status).toBe(200);
  });

  it('refuses a listen address beyond loopback, or without a token', async () => {
    for (const listen of [
      '0.0.0.0:8765',
      '192.168.1.10:8765',
      'example.com:80',
      '127.0.0.1:70000',
    ]) {
      expect(() => parseListen(listen)).toThrow(/expected 127\.0\.0\.1:PORT/);
      const socket = join(await tempDir(), 'api.sock');
      await rejectsWith(
        startApi({
          socket,
          listen,
          token,
          backend,
          logger: pino({ level: 'silent' }),
          version: '1',
        }),
        'CONFIG_INVALID',
      );
      expect(existsSync(socket)).toBe(false);
    }
    expect(parseListen('localhost:8765')).toEqual({ host: '127.0.0.1', port: 8765 });
    expect(parseListen('[::1]:8765')).toEqual({ host: '::1', port: 8765 });
    await rejectsWith(
      startApi({
        socket: join(await tempDir(), 'api.sock'),
        listen: `127.0.0.1:${await freePort()}`,
        backend,
        logger: pino({ level: 'silent' }),
        version: '1',
      }),
      'CONFIG_INVALID',
    );
  });

  it('leaves no socket behind when the TCP port is taken', async () => {
    const socket = join(await tempDir(), 'api.sock');
    const error = await rejectsWith(
      startApi({
        socket,
        listen: `127.0.0.1:${port}`,
        token,
        backend,
        logger: pino({ level: 'silent' }),
        version: '1',
      }),
      'UNAVAILABLE',
    );
    expect(error.message).toMatch(
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
    );
    expect(existsSync(socket)).toBe(false);
  });
});

describe('the API on the ingress port', () => {
  const backend = new TestBackend();
  let api: Api;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    api = await startApi({
      socket: join(await tempDir(), 'api.sock'),
      // The Supervisor's proxy is 172.30.32.2 in an add-on; here a loopback address stands in.
      ingress: { port, host: '127.0.0.1', allow: ['127.0.0.1'] },
      backend,
      logger: pino({ level: 'silent' }),
      version: '1',
    });
  });
  afterAll(async () => {
    await api.close();
  });

  it('serves the status page and the read-only routes to an allowed peer, with no token', async () => {
    const target = { host: '127.0.0.1', port };
    const page = await call(target, 'GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('<title>');
    const status = await call(target, 'GET', '/v1/status');
    expect(status.status).toBe(200);
    expect(JSON.parse(status.body)).toEqual({ version: 'test', size: 42 });
    expect((await call(target, 'GET', '/healthz')).status).toBe(200);
    const events = await openEvents(target);
    expect(events.response.statusCode).toBe(200);
    events.close();
  });

  it('answers nothing that changes anything: a POST is 405, whatever its route', async () => {
    const verified = backend.verified.length;
    for (const path of ['/v1/sync', '/v1/verify']) {
      const reply = await call({ host: '127.0.0.1', port }, 'POST', path, {
        body: JSON.stringify({ digest }),
        headers: json,
      });
      expect(reply.status, path).toBe(405);
      expect(reply.headers.allow).toBe('GET, HEAD');
      expect(errorOf(reply).message).toMatch(/read-only/);
    }
    expect(backend.verified.length).toBe(verified);
  });

  it('answers 403 to a peer not in api.ingress.allow', async () => {
    // 127.0.0.2 is loopback too (127.0.0.0/8), but not the allowed address.
    const reply = await call({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }, 'GET', '/');
    expect(reply.status).toBe(403);
    expect(errorOf(reply).message).toBe('this port answers api.ingress.allow only, not 127.0.0.2');
  });
});

describe('the socket file', () => {
  const silent = pino({ level: 'silent' });

  it('belongs to the agent: its user and group may connect, another user may not (as root)', async () => {
    expect(process.getuid?.(), 'this test needs root, to connect as other users').toBe(0);
    // mkdtemp makes 0700: opened, so that only the API's own directory (0750) keeps others out.
    const base = await tempDir();
    await chmod(base, 0o755);
    const socketPath = join(base, 'run', 'api.sock');
    const api = await startApi({
      socket: socketPath,
      backend: new TestBackend(),
      logger: silent,
      version: '1',
    });
    try {
      const socket = await lstat(socketPath);
      expect([socket.uid, socket.gid, socket.mode & 0o777]).toEqual([
        process.getuid?.(),
        process.getgid?.(),
        0o660,
      ]);
      /** What connecting to the socket gives a process of `uid` and `gid` (no other groups). */
      const connectAs = (uid: number, gid: number) =>
        execFileSync(
          process.execPath,
          [
            '-e',
            `require('node:net').connect(${JSON.stringify(socketPath)})
              .on('connect', () => { console.log('connected'); process.exit(0); })
              .on('error', (error) => console.log(error.code));`,
          ],
          { uid, gid, encoding: 'utf8' },
        ).trim();
      // nobody, in the agent's group: in.
      expect(connectAs(65534, socket.gid)).toBe('connected');
      // nobody in nogroup: out, at the directory.
      expect(connectAs(65534, 65534)).toBe('EACCES');
      // And at the socket itself, were the directory open to all.
      await chmod(join(base, 'run'), 0o755);
      expect(connectAs(65534, 65534)).toBe('EACCES');
    } finally {
      await api.close();
    }
  });

  it('keeps the mode of a directory that exists', async () => {
    const dir = join(await tempDir(), 'run');
    await mkdir(dir, { mode: 0o755 });
    await chmod(dir, 0o755);
    const api = await startApi({
      socket: join(dir, 'api.sock'),
      backend: new TestBackend(),
      logger: silent,
      version: '1',
    });
    try {
      expect((await stat(dir)).mode & 0o777).toBe(0o755);
    } finally {
      await api.close();
    }
  });

  it('replaces a socket left by an agent that died', async () => {
    const socketPath = join(await tempDir(), 'api.sock');
    const child = spawn(
      process.execPath,
      [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await lstat(socketPath)).isSocket()).toBe(true);
    const api = await startApi({
      socket: socketPath,
      backend: new TestBackend(),
      logger: silent,
      version: '1',
    });
    try {
      expect((await call({ socketPath }, 'GET', '/v1/status')).status).toBe(200);
    } finally {
      await api.close();
    }
    expect(existsSync(socketPath)).toBe(false);
  });

  it('refuses a socket another agent answers on, and leaves it be', async () => {
    const socketPath = join(await tempDir(), 'api.sock');
    const first = await startApi({
      socket: socketPath,
      backend: new TestBackend(),
      logger: silent,
      version: '1',
    });
    try {
      const error = await rejectsWith(
        startApi({ socket: socketPath, backend: new TestBackend(), logger: silent, version: '1' }),
        'UNAVAILABLE',
      );
      expect(error.message).toMatch(/another process answers on .*api\.sock/);
      expect((await call({ socketPath }, 'GET', '/v1/status')).status).toBe(200);
    } finally {
      await first.close();
    }
  });

  it('refuses to replace a file that is not a socket', async () => {
    const socketPath = join(await tempDir(), 'api.sock');
    await writeFile(socketPath, 'mine');
    await rejectsWith(
      startApi({ socket: socketPath, backend: new TestBackend(), logger: silent, version: '1' }),
      'FILE_EXISTS',
    );
    expect(await readFile(socketPath, 'utf8')).toBe('mine');
  });
});

describe('closing and timeouts', () => {
  const silent = pino({ level: 'silent' });

  it('closes within 1 s with an event stream open, ending it, and removes the socket', {
    timeout: 10_000,
  }, async () => {
    const backend = new TestBackend();
    const socketPath = join(await tempDir(), 'api.sock');
    const api = await startApi({ socket: socketPath, backend, logger: silent, version: '1' });
    const stream = await openEvents({ socketPath });
    await vi.waitFor(() => expect(backend.events.subscribers).toBe(1));
    const ended = once(stream.response, 'end');
    const started = performance.now();
    await api.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await ended;
    expect(backend.events.subscribers).toBe(0);
    expect(existsSync(socketPath)).toBe(false);
    // Closing twice is closing once.
    await api.close();
  });

  it('lets a request under way answer, and cuts one that hangs after the grace', {
    timeout: 10_000,
  }, async () => {
    const backend = new TestBackend();
    const socketPath = join(await tempDir(), 'api.sock');
    const options = {
      socket: socketPath,
      backend,
      logger: silent,
      version: '1',
      closeGraceMs: 300,
    };
    const api = await startApi(options);
    backend.delayMs = 100;
    const slow = post({ socketPath }, '/v1/verify', { digest });
    await vi.waitFor(() => expect(backend.calls).toBe(1));
    await api.close();
    const reply = await slow;
    expect(reply.status).toBe(200);
    expect(reply.headers.connection).toBe('close');

    const again = await startApi(options);
    backend.stuck = true;
    const hung = post({ socketPath }, '/v1/verify', { digest }).catch((error: Error) => error);
    await vi.waitFor(() => expect(backend.calls).toBe(2));
    const started = performance.now();
    await again.close();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(await hung).toBeInstanceOf(Error);
  });

  it('times out receiving a request, never answering one or an event stream', {
    timeout: 10_000,
  }, async () => {
    const backend = new TestBackend();
    const socketPath = join(await tempDir(), 'api.sock');
    const api = await startApi({
      socket: socketPath,
      backend,
      logger: silent,
      version: '1',
      heartbeatMs: 60_000,
      timeouts: { headersMs: 100, requestMs: 200, keepAliveMs: 100 },
    });
    try {
      const stream = await openEvents({ socketPath });
      backend.delayMs = 500;
      const slow = await post({ socketPath }, '/v1/verify', { digest });
      expect(slow.status).toBe(200);
      await sleep(300);
      backend.events.publish({
        type: 'health',
        service: 'sync',
        health: { state: 'ok', reason: '', since: '' },
      });
      await vi.waitFor(() => expect(stream.events()).toHaveLength(1));
      stream.close();

      // A body that never ends, and headers that never end.
      for (const partial of [
        'POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"',
        'GET /v1/status HTTP/1.1\r\nHost: x\r\n',
      ]) {
        const started = performance.now();
        const socket = connect(socketPath);
        socket.write(partial);
        let text = '';
        socket.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        await once(socket, 'close');
        expect(text).toMatch(/^HTTP\/1\.1 408 /);
        // The timeouts are checked often enough to hold (Node's default: every 30 s).
        expect(performance.now() - started).toBeLessThan(2000);
      }
    } finally {
      await api.close();
    }
  });
});

describe('readTokenFile', () => {
  it('reads the token, trimmed', async () => {
    const path = join(await tempDir(), 'api.token');
    await writeFile(path, `  ${token}\n`, { mode: 0o640 });
    expect(await readTokenFile(path)).toBe(token);
  });

  it('refuses an empty file, one others may read, and one that is no token', async () => {
    const dir = await tempDir();
    const cases: [string, string, number, RegExp][] = [
      ['empty', ' \n', 0o600, /is empty/],
      ['others', token, 0o604, /accessible by others \(mode 604\); run chmod o-rwx/],
      ['short', 'abc', 0o600, /at least 16 characters/],
      ['spaces', `${token} ${token}`, 0o600, /RFC 6750/],
    ];
    for (const [name, content, mode, message] of cases) {
      const path = join(dir, name);
      await writeFile(path, content);
      await chmod(path, mode);
      const error = await rejectsWith(readTokenFile(path), 'CONFIG_INVALID');
      expect(error.message, name).toMatch(message);
    }
    await rejectsWith(readTokenFile(join(dir, 'absent')), 'IO');
  });

  it('refuses a FIFO without waiting for a writer', { timeout: 5000 }, async () => {
    const fifo = join(await tempDir(), 'api.token');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const error = await rejectsWith(readTokenFile(fifo), 'IO');
    expect(error.message).toMatch(/is a FIFO, not a regular file/);
  });
});
