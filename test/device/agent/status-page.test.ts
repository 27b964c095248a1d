import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, startApi } from '../../../agent/device/agent/api';
import type { ApiBackend } from '../../../agent/device/agent/backend';
import { AgentEvents } from '../../../agent/device/agent/events';
import type { Health } from '../../../agent/device/agent/health';
import { AgentMetrics } from '../../../agent/device/agent/metrics';
import {
  type OverallImageInput,
  type OverallStatusInput,
  overallStatus,
} from '../../../agent/device/agent/overall';
import { requireBinary, waitFor } from '../../../scripts/lib/services';
import { call, type Reply } from '../../helpers/http';
import { describeWith } from '../../helpers/services';

/**
 * The status page (`GET /`): served over the real socket by a backend of the test's own
 * with the demo's kind of verdicts, then rendered by headless Chromium, its scripts run.
 */

const run = promisify(execFile);
const since = '2026-01-01T00:00:00Z';
const ok: Health = { state: 'ok', reason: 'working', since };

function image(
  name: string,
  status: OverallImageInput['status'],
  reason: string,
  required = false,
) {
  return {
    ref: name,
    id: `sha256:${createHash('sha256').update(name).digest('hex')}`,
    names: [name],
    status,
    reason,
    requirement: { required },
    decision: { mode: 'enforce', action: status === 'REVOKED' ? 'stop' : 'none', allowedBy: null },
  };
}

/** The demo's kind of verdicts: a trusted and a revoked image, a trusted file; a name with markup in it. */
class DemoBackend implements ApiBackend {
  readonly events = new AgentEvents();
  readonly metrics = new AgentMetrics({
    verdictCounts: () => ({}),
    lastSyncSuccess: () => undefined,
    logSize: () => 7,
  });
  images = [
    image('ghcr.io/demo/app:1.0', 'TRUSTED', 'signed by demo@example.org'),
    image('ghcr.io/demo/old:0.9', 'REVOKED', 'revoked by demo@example.org: signed by mistake'),
    image('<b>markup</b>:1', 'UNKNOWN', 'no statement'),
  ];
  /** verdicts() calls so far. */
  verdictsRead = 0;
  /** Called when a client opens the event stream. */
  onSubscribe: (() => void) | undefined;

  constructor() {
    const subscribe = this.events.subscribe.bind(this.events);
    this.events.subscribe = (listener) => {
      const off = subscribe(listener);
      this.onSubscribe?.();
      return off;
    };
  }

  async status(): Promise<unknown> {
    const services = { trust: ok, sync: ok, docker: ok };
    const status = { origin: 'demo.example.org/log', stale: false, services };
    return {
      version: 'test',
      overall: overallStatus(status, this.images),
      ...status,
      size: 7,
      records: 5,
      checkpointTime: since,
      checkpointAgeSeconds: 90,
      freshSince: since,
      maxAgeSeconds: 86_400,
      fork: false,
      lastSync: {
        at: Date.parse(since),
        ok: true,
        source: 'http://127.0.0.1:1/log/',
        fromSize: 0,
        added: 7,
      },
      lastSuccess: {
        at: Date.parse(since),
        ok: true,
        source: 'http://127.0.0.1:1/log/',
        fromSize: 0,
      },
      mirrors: [{ url: 'http://127.0.0.1:1/log/', at: Date.parse(since), ok: true }],
      hashing: { workers: 3, chunkSize: 1_048_576, inFlightBytes: 8_388_608, reasons: ['4 cores'] },
    };
  }

  async verdicts(): Promise<unknown> {
    this.verdictsRead += 1;
    return {
      images: this.images,
      subjects: [
        {
          kind: 'file',
          subject: '/demo/hello.txt',
          name: 'hello.txt',
          status: 'TRUSTED',
          reason: 'signed',
        },
      ],
    };
  }

  async verify(): Promise<unknown> {
    throw new Error('not used');
  }

  async sync(): Promise<unknown> {
    throw new Error('not used');
  }

  healthz() {
    return { ok: true, services: {} };
  }
}

function get(socketPath: string, method = 'GET'): Promise<Reply> {
  return call({ socketPath }, method, '/');
}

/** How long the browser's event stream lasts before the proxy ends it. */
const streamCutMs = 500;

/**
 * A loopback TCP port for the browser, forwarding to the API's Unix socket, each request's
 * path kept in `paths`. It ends each event stream after a moment: Chromium's virtual time
 * stands still while a request is pending, which an event stream always is, so the page
 * would never use up its time budget. It also tells the page (SSE `retry`) not to reconnect
 * within the budget: a reconnect reads everything again, and what the page shows must come
 * from the events.
 */
async function forward(socketPath: string, paths: string[]): Promise<Server> {
  const server = createServer((incoming, outgoing) => {
    paths.push(incoming.url ?? '');
    const upstream = request(
      { socketPath, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
        if (incoming.url === '/v1/events') {
          outgoing.write('retry: 600000\n\n');
          setTimeout(() => {
            upstream.destroy();
            outgoing.destroy();
          }, streamCutMs);
        }
      },
    );
    upstream.on('error', () => outgoing.destroy());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

let dir: string;
let socket: string;
let api: Api;
const backend = new DemoBackend();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vouch-page-'));
  socket = join(dir, 'api.sock');
  api = await startApi({ socket, backend, logger: pino({ level: 'silent' }), version: 'test' });
});

afterAll(async () => {
  await api?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /', () => {
  it('serves the page with a strict Content-Security-Policy and nothing from elsewhere', async () => {
    const { status, headers, body } = await get(socket);
    expect(status).toBe(200);
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
    expect(headers['x-content-type-options']).toBe('nosniff');
    const csp = String(headers['content-security-policy']);
    expect(csp).toMatch(/^default-src 'none'; /);
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+=*'(;|$)/);
    expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/]+=*'(;|$)/);
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe');
    expect(body).toMatch(/^<!doctype html>/);
    expect(body).toContain('<meta name="viewport"');
    expect(body).toMatch(/<style>[^<]+<\/style>/);
    expect(body).toMatch(/<script>[\s\S]+new EventSource\('v1\/events'\)[\s\S]+<\/script>/);
    // Relative URLs only, none to another host, nothing written as markup.
    expect(body).not.toMatch(/https?:|["'(]\/|\bsrc=|\bhref=/);
    expect(body).not.toContain('innerHTML');
    // The CSP's hashes are those of the inline style and script.
    for (const tag of ['style', 'script']) {
      const text = new RegExp(`<${tag}>([\\s\\S]*)</${tag}>`).exec(body)?.[1] ?? '';
      const hash = createHash('sha256').update(text).digest('base64');
      expect(csp).toContain(`${tag}-src 'sha256-${hash}'`);
    }
  });

  it('answers HEAD with the headers alone', async () => {
    const { status, headers, body } = await get(socket, 'HEAD');
    expect(status).toBe(200);
    expect(Number(headers['content-length'])).toBeGreaterThan(1000);
    expect(body).toBe('');
  });
});

describe('overallStatus', () => {
  const trusted = image('a:1', 'TRUSTED', 'signed');
  const base: OverallStatusInput = { origin: 'log', stale: false, services: { trust: ok } };
  const degraded: Health = { state: 'degraded', reason: 'no mirror answered', since };
  const failed: Health = { state: 'failed', reason: 'cannot read', since };

  it('is ok when trusted, fresh, no image a problem and every service ok', () => {
    expect(overallStatus(base, [trusted, image('b:1', 'UNKNOWN', 'none', false)])).toEqual({
      status: 'ok',
      reasons: [],
    });
  });

  it('is violation when an image is UNTRUSTED or REVOKED, whatever else is wrong', () => {
    const result = overallStatus({ origin: 'log', stale: true, services: { inbox: failed } }, [
      trusted,
      image('b:1', 'REVOKED', 'revoked'),
      image('c:1', 'UNTRUSTED', 'bad'),
    ]);
    expect(result).toEqual({
      status: 'violation',
      reasons: [
        'b:1 is REVOKED',
        'c:1 is UNTRUSTED',
        'inbox failed: cannot read',
        'the trust state is stale',
      ],
    });
  });

  it('is error without trust state or with a failed service', () => {
    expect(overallStatus({ ...base, origin: null, stale: true }, [])).toEqual({
      status: 'error',
      reasons: ['no trust state'],
    });
    expect(overallStatus({ ...base, services: { inbox: failed } }, [trusted]).status).toBe('error');
  });

  it('is stale when the trust state is stale', () => {
    expect(overallStatus({ ...base, stale: true }, [trusted])).toEqual({
      status: 'stale',
      reasons: ['the trust state is stale'],
    });
  });

  it('is warning for UNKNOWN where required, UNSUPPORTED, could not check, a degraded service', () => {
    expect(overallStatus(base, [image('b:1', 'UNKNOWN', 'none', true)]).status).toBe('warning');
    expect(overallStatus(base, [image('b:1', 'UNSUPPORTED', 'old format')]).status).toBe('warning');
    expect(overallStatus(base, [image('b:1', null, 'timeout')])).toEqual({
      status: 'warning',
      reasons: ['b:1 could not be checked'],
    });
    expect(overallStatus({ ...base, services: { sync: degraded } }, [trusted])).toEqual({
      status: 'warning',
      reasons: ['sync: no mirror answered'],
    });
  });
});

describeWith('chromium', 'the status page in a browser', () => {
  let chromium: string;
  let proxy: Server;
  let url: string;
  let profile: string;
  const paths: string[] = [];

  beforeAll(async () => {
    chromium = requireBinary('chromium');
    proxy = await forward(socket, paths);
    url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
    profile = await mkdtemp(join(tmpdir(), 'vouch-chromium-'));
  });

  afterAll(async () => {
    proxy?.closeAllConnections();
    await new Promise((resolve) => proxy?.close(resolve));
    await rm(profile, { recursive: true, force: true });
  });

  /** Chromium headless, its scripts given `budget` ms of (virtual) time before it reports. */
  async function browse(budgetMs: number, ...args: string[]): Promise<string> {
    const { stdout } = await run(
      chromium,
      [
        '--headless=new',
        // As root (CI), Chromium refuses to start sandboxed.
        '--no-sandbox',
        '--disable-gpu',
        `--user-data-dir=${profile}`,
        `--virtual-time-budget=${budgetMs}`,
        ...args,
        url,
      ],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
    );
    return stdout;
  }

  it('renders the verdicts, each value as text', async () => {
    const dom = await browse(3_000, '--dump-dom');
    expect(dom).toContain('<strong>violation</strong>');
    expect(dom).toContain('ghcr.io/demo/old:0.9 is REVOKED');
    expect(dom).toMatch(
      /ghcr\.io\/demo\/old:0\.9[\s\S]*REVOKED[\s\S]*revoked by demo@example\.org: signed by mistake/,
    );
    expect(dom).toMatch(/ghcr\.io\/demo\/app:1\.0[\s\S]*TRUSTED[\s\S]*signed by demo@example\.org/);
    expect(dom).toContain('hello.txt');
    expect(dom).toContain('4 cores'); // the hashing plan's reason
    // A name with markup in it is shown as text, not made into elements.
    expect(dom).toContain('&lt;b&gt;markup&lt;/b&gt;:1');
    expect(dom).not.toContain('<b>markup</b>');
    expect(dom).toContain('id="live"');
  }, 90_000);

  it('takes a screenshot the size of a phone', async () => {
    const file = join(profile, 'page.png');
    await browse(3_000, `--screenshot=${file}`, '--window-size=390,844');
    const png = await readFile(file);
    expect(png.length).toBeGreaterThan(1000);
    expect(png.subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
  }, 90_000);

  it('shows a new verdict told on the event stream', async () => {
    paths.length = 0;
    const read = backend.verdictsRead;
    backend.onSubscribe = () => {
      backend.onSubscribe = undefined;
      // Once the page has read the verdicts: the new one can reach it only through the event.
      void waitFor(
        'the page to read the verdicts',
        async () => backend.verdictsRead > read,
        5_000,
      ).then(() => {
        backend.images = [
          ...backend.images,
          image('ghcr.io/demo/new:2.0', 'UNTRUSTED', 'signed by a key the root does not know'),
        ];
        backend.events.publish({
          type: 'verdict',
          subject: 'sha256:new',
          kind: 'image',
          name: 'ghcr.io/demo/new:2.0',
          status: 'UNTRUSTED',
          previous: null,
          reason: 'signed by a key the root does not know',
        });
      });
    };
    const dom = await browse(5_000, '--dump-dom');
    expect(dom).toMatch(
      /ghcr\.io\/demo\/new:2\.0[\s\S]*UNTRUSTED[\s\S]*signed by a key the root does not know/,
    );
    expect(dom).toContain('ghcr.io/demo/new:2.0 is UNTRUSTED');
    // One stream; the verdicts read at the start and once after the event.
    expect(paths.filter((path) => path === '/v1/events')).toHaveLength(1);
    expect(paths.filter((path) => path === '/v1/verdicts')).toHaveLength(2);
  }, 90_000);
});
