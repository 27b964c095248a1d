import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VouchError } from '../../../agent/core/errors';
import { generateKey, namePublicKey } from '../../../agent/core/keys';
import { importSnapshot, syncFromMirrors } from '../../../agent/device';
import {
  addEnvelopes,
  exportLogSnapshot,
  initLog,
  type LogServer,
  publicDir,
  publishLog,
  serveLog,
} from '../../../agent/ledger';
import { createLogger } from '../../../agent/logger';
import { freePort } from '../../../scripts/lib/services';
import { runCli } from '../../helpers/cli';
import { cliBundle, grow, statement, testWorld, type World } from '../../helpers/device';
import { testOrigin } from '../../helpers/log';

/**
 * What a sync says when a mirror fails, against real HTTP servers: every error names the
 * mirror and the file and says in plain words what was wrong; a host that never completes
 * the TCP handshake is given up on after the connect timeout, not the body timeout; and a
 * mirror that keeps us waiting gets a line on the log.
 */

const silent = createLogger('cli', 'silent');
let world: World;
let good: LogServer;
const servers: { close(): Promise<void> | void }[] = [];

/** An HTTP server on 127.0.0.1 answering every request with `handler`. */
async function serve(handler: RequestListener): Promise<string> {
  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push({
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** Answers with the world's published file at the request's path; 404 when there is none. */
async function published(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').slice(1);
  const body = await readFile(join(publicDir(world.logDir), path)).catch(() => undefined);
  if (body) response.writeHead(200).end(body);
  else response.writeHead(404).end();
}

/** The world's statement 0, in a log of its own (`origin`, a new key), served by `vouch log serve`. */
async function anotherLog(origin: string): Promise<{ url: string; dir: string }> {
  const parent = await mkdtemp(join(tmpdir(), 'vouch-other-log-'));
  const { key, privatePem } = generateKey();
  const keyPath = join(parent, 'log.key');
  await writeFile(keyPath, privatePem, { mode: 0o600 });
  const dir = join(parent, 'log');
  await initLog(dir, origin, keyPath, key);
  const root = { ...world.root, log: { origin, key: namePublicKey(origin, key.raw) } };
  await addEnvelopes(dir, root, [statement(world, 0)], new Date());
  await publishLog(dir, key);
  const server = await serveLog(dir, { port: 0 });
  servers.push(server);
  return { url: server.url, dir };
}

/**
 * A TCP port on 127.0.0.1 whose listener never accepts and whose accept queue is full,
 * so that the kernel drops further SYNs: a connect to it never completes, as to a host
 * that is down or behind a firewall that drops packets. The listener is a stopped child
 * process; the queue is filled until a connect stays unanswered.
 */
async function unansweredPort(): Promise<{ port: number; close(): void }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-e',
      "const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port));",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  child.kill('SIGSTOP');
  const queued: Socket[] = [];
  const close = () => {
    for (const socket of queued) socket.destroy();
    child.kill('SIGKILL');
  };
  for (;;) {
    const socket = connect(port, '127.0.0.1');
    queued.push(socket);
    const connected = await Promise.race([
      once(socket, 'connect').then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)),
    ]);
    if (!connected) return { port, close };
    if (queued.length > 64) {
      close();
      throw new Error('the accept queue never filled');
    }
  }
}

function sync(
  stateDir: string,
  mirrors: string[],
  options: { timeoutMs?: number; connectTimeoutMs?: number; logger?: typeof silent } = {},
) {
  return syncFromMirrors({
    stateDir,
    mirrors,
    rootPath: world.rootPath,
    timeoutMs: options.timeoutMs ?? 500,
    connectTimeoutMs: options.connectTimeoutMs,
    maxBundleBytes: 1 << 24,
    logger: options.logger ?? silent,
  });
}

const newState = () => mkdtemp(join(tmpdir(), 'vouch-state-'));

/** The error a sync from `mirrors` fails with; the state must still be empty. */
async function failure(mirrors: string[], options?: Parameters<typeof sync>[2]) {
  const dir = await newState();
  const error = await sync(dir, mirrors, options).then(
    () => expect.unreachable('the mirror was accepted'),
    (e: unknown) => e as VouchError,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error;
}

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 3);
  good = await serveLog(world.logDir, { port: 0 });
  servers.push(good);
}, 60_000);

afterAll(async () => {
  for (const server of servers) await server.close();
});

describe('mirror errors name the mirror and the file, in plain words', () => {
  it('a host answering an HTML page for every path (by its type, or by its content)', async () => {
    const page = '<!DOCTYPE html>\n<html><body>Welcome to nginx!</body></html>\n';
    for (const type of ['text/html; charset=utf-8', 'application/octet-stream']) {
      const url = await serve((_request, response) => {
        response.writeHead(200, { 'Content-Type': type }).end(page);
      });
      const error = await failure([url]);
      expect([error.code, error.message]).toEqual([
        'UNAVAILABLE',
        `mirror ${url} answered an HTML page for checkpoint: is this the log's URL (the directory that holds checkpoint and tile/)?`,
      ]);
    }
  });

  it('a checkpoint signed by another key than the trust root names', async () => {
    const { url } = await anotherLog(testOrigin);
    const expected = `${testOrigin}+${Buffer.from(world.root.log.key.keyId).toString('hex')}`;
    const error = await failure([url]);
    expect(error.code).toBe('NOTE_UNVERIFIED');
    expect(error.message).toMatch(
      new RegExp(
        `^the log at ${escaped(url)} is signed by a different key than your trust root expects ` +
          // The log's key signs the note and, as a cosignature, its time: two lines.
          `\\(the checkpoint is signed by ${escaped(testOrigin)}\\+[0-9a-f]{8}, ${escaped(testOrigin)}\\+[0-9a-f]{8}; trust root v1 expects ` +
          `${escaped(testOrigin)}, signed by ${escaped(expected)}\\)$`,
      ),
    );
    expect(error.message).not.toContain(`signed by ${expected};`);
  });

  it('a checkpoint of another log (another origin)', async () => {
    const { url } = await anotherLog('other.example/log');
    const error = await failure([url]);
    expect(error.code).toBe('NOTE_UNVERIFIED');
    expect(error.message).toMatch(
      new RegExp(
        `^the log at ${escaped(url)} is another log: its checkpoint is for other\\.example/log, ` +
          `signed by other\\.example/log\\+[0-9a-f]{8}, other\\.example/log\\+[0-9a-f]{8}; your trust root v1 expects ${escaped(testOrigin)}`,
      ),
    );
  });

  it('no checkpoint (404): not a log', async () => {
    const url = await serve((_request, response) => response.writeHead(404).end('not found'));
    const error = await failure([url]);
    expect([error.code, error.message]).toEqual([
      'UNAVAILABLE',
      `mirror ${url} has no checkpoint (not found): is this the log's URL (the directory that holds checkpoint and tile/)?`,
    ]);
  });

  it('HTTP 5xx, refused connections, unknown hosts, a server that never answers', async () => {
    const failing = await serve((_request, response) => response.writeHead(503).end());
    const port = await freePort();
    const silentServer = await serve(() => {});
    const cases: [string, string, string][] = [
      [failing, 'UNAVAILABLE', 'checkpoint: the server failed (HTTP 503 Service Unavailable)'],
      [
        `http://127.0.0.1:${port}/`,
        'UNAVAILABLE',
        `checkpoint: connection refused by 127.0.0.1:${port}: nothing listens there`,
      ],
      [silentServer, 'UNAVAILABLE', 'checkpoint: no complete answer within 500 ms'],
    ];
    for (const [url, code, message] of cases) {
      const error = await failure([url]);
      expect([error.code, error.message]).toEqual([code, `mirror ${url}: ${message}`]);
    }
    // RFC 6761: .invalid never resolves. A resolver that cannot answer says so instead.
    const dns = await failure(['http://nonexistent.invalid/']);
    expect(dns.code).toBe('UNAVAILABLE');
    expect(dns.message).toMatch(
      /^mirror http:\/\/nonexistent\.invalid\/: checkpoint: (there is no host nonexistent\.invalid|the name nonexistent\.invalid could not be resolved now) \(DNS\)$/,
    );
  });

  it('a root update that does not parse names the mirror and roots/<V>.json', async () => {
    const url = await serve(async (request, response) => {
      if (request.url === '/roots/2.json') {
        response.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      } else {
        await published(request, response);
      }
    });
    const error = await failure([url]);
    expect(error.code).toBe('ENVELOPE_INVALID');
    expect(error.message).toMatch(
      new RegExp(`^mirror ${escaped(url)}: roots/2\\.json: not a DSSE envelope`),
    );
  });

  it('a snapshot whose checkpoint is signed by another key says so too', async () => {
    const { dir } = await anotherLog(testOrigin);
    const file = join(await mkdtemp(join(tmpdir(), 'vouch-snap-')), 'other-key.tar');
    const caps = { maxBytes: 1 << 24, maxBundleBytes: 1 << 24 };
    await exportLogSnapshot({ out: file, logDir: dir, ...caps });
    const error = await importSnapshot({
      file,
      stateDir: await newState(),
      rootPath: world.rootPath,
      logger: silent,
      ...caps,
    }).then(
      () => expect.unreachable('the snapshot was accepted'),
      (e: unknown) => e as VouchError,
    );
    expect(error).toBeInstanceOf(VouchError);
    expect(error.code).toBe('NOTE_UNVERIFIED');
    expect(error.message).toMatch(
      new RegExp(
        `^the snapshot ${escaped(file)} is signed by a different key than your trust root expects`,
      ),
    );
  });
});

describe('connect timeout', () => {
  it('gives up on a host that never completes the handshake after sync.connectTimeout, then fails over', async () => {
    const unanswered = await unansweredPort();
    try {
      const url = `http://127.0.0.1:${unanswered.port}/`;
      const started = Date.now();
      const dir = await newState();
      const report = await sync(dir, [url, good.url], { timeoutMs: 30_000, connectTimeoutMs: 500 });
      const elapsed = Date.now() - started;
      expect(report.size).toBe(3);
      expect(
        report.mirrors.map((mirror) => [mirror.url, mirror.ok, mirror.error?.message]),
      ).toEqual([
        [
          url,
          false,
          `mirror ${url}: checkpoint: no connection to 127.0.0.1 within 500 ms: the host does not answer (down, or a firewall drops the packets)`,
        ],
        [good.url, true, undefined],
      ]);
      // Not the 30 s body timeout.
      expect(elapsed).toBeLessThan(10_000);
    } finally {
      unanswered.close();
    }
  }, 40_000);

  it('a connection that opens but gets no answer still waits for the body timeout', async () => {
    const silentServer = await serve(() => {});
    const started = Date.now();
    const error = await failure([silentServer], { timeoutMs: 1500, connectTimeoutMs: 100 });
    expect(error.message).toBe(
      `mirror ${silentServer}: checkpoint: no complete answer within 1.5 s`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });
});

describe('a slow mirror', () => {
  it('says which mirror and file it is waiting for, on the log at info level', async () => {
    const url = await serve(async (request, response) => {
      if (request.url === '/checkpoint') await new Promise((resolve) => setTimeout(resolve, 2600));
      await published(request, response);
    });
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    const report = await sync(await newState(), [url], { timeoutMs: 10_000, logger });
    expect(report.size).toBe(3);
    const waiting = lines.filter((line) => line.msg.startsWith('waiting'));
    expect(waiting).toEqual([
      expect.objectContaining({
        level: 30,
        msg: `waiting for checkpoint from mirror ${url}: no answer after 2 s (giving up after 10 s)`,
      }),
    ]);
  }, 20_000);

  it('vouch sync puts that line on stderr, unless --log-level says otherwise (built CLI)', async () => {
    const url = await serve(async (request, response) => {
      if (request.url === '/checkpoint') await new Promise((resolve) => setTimeout(resolve, 2600));
      await published(request, response);
    });
    const run = async (...extra: string[]) => {
      const dir = await newState();
      const argv = ['sync', '--state-dir', dir, '--root', world.rootPath, '--mirror', url];
      // Asynchronously: the server answers from this process meanwhile.
      return promisify(execFile)(process.execPath, [cliBundle, ...argv, ...extra], {
        timeout: 30_000,
      });
    };
    const shown = await run();
    // One line, as pino-pretty writes it: `[HH:MM:SS] INFO: message`.
    const waiting = `INFO: waiting for checkpoint from mirror ${url}: no answer after 2 s (giving up after 30 s)\n`;
    const at = shown.stderr.indexOf(waiting);
    expect(at, shown.stderr).toBeGreaterThan(0);
    // Nothing after it: the sync's report is on stdout.
    expect(shown.stderr.slice(at + waiting.length)).toBe('');
    expect(shown.stdout).toMatch(/size 0 → \d+/);
    const quiet = await run('--log-level', 'warn');
    expect(quiet.stderr).toBe('');
  }, 120_000);
});

describe('sync.connectTimeout in the configuration', () => {
  it('is what vouch sync gives a host that never completes the handshake', async () => {
    const unanswered = await unansweredPort();
    try {
      const url = `http://127.0.0.1:${unanswered.port}/`;
      const config = join(await newState(), 'agent.yaml');
      await writeFile(config, 'sync:\n  timeout: 30s\n  connectTimeout: 300ms\n');
      const started = Date.now();
      const result = await runCli([
        'sync',
        '--config',
        config,
        '--state-dir',
        await newState(),
        '--root',
        world.rootPath,
        '--mirror',
        url,
        '--log-level',
        'silent',
      ]);
      expect(result.exitCode).toBe(69);
      expect(result.stderr).toBe(
        `vouch: mirror ${url}: checkpoint: no connection to 127.0.0.1 within 300 ms: the host does not answer (down, or a firewall drops the packets)\n`,
      );
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      unanswered.close();
    }
  }, 40_000);
});

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
