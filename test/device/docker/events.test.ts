import { mkdtemp } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VouchError } from '../../../agent/core/errors';
import {
  type DockerEvent,
  DockerEventFollower,
  type EventObject,
} from '../../../agent/device/docker/events';
import { buildScratchImage, type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import { waitFor } from '../../../scripts/lib/services';
import { describeWith } from '../../helpers/services';

/**
 * The event follower against HTTP servers of our own on a unix socket (what dockerd may
 * send, and not answering at all) and against a real dockerd (events, a restart). Each
 * test bounds how long stop() may take.
 */

/** How long stop() may take: a connection or a wait to retry ends at once. */
const stopBoundMs = 1000;

/** A follower and everything it reports. */
function followerOn<T extends EventObject>(
  docker: Docker,
  options: {
    readonly types: readonly T[];
    readonly actions: readonly string[];
    readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
    readonly onConnected?: (again: boolean) => Promise<void>;
    readonly onEvent?: (event: DockerEvent<T>) => Promise<void>;
  },
) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  const events: DockerEvent<T>[] = [];
  /** `connected` or `again` per connection, the delay before the next try per failure. */
  const connections: ('connected' | 'again' | number)[] = [];
  const failures: VouchError[] = [];
  const follower = new DockerEventFollower<T>({
    docker,
    types: options.types,
    actions: options.actions,
    logger,
    backoff: options.backoff ?? { initialMs: 20, maxMs: 80 },
    onConnected: async (again) => {
      connections.push(again ? 'again' : 'connected');
      await options.onConnected?.(again);
    },
    onEvent: async (event) => {
      events.push(event);
      await options.onEvent?.(event);
    },
    onDisconnected: (error, retryInMs) => {
      failures.push(error);
      connections.push(retryInMs);
    },
  });
  const until = (what: string, probe: () => boolean) => waitFor(what, async () => probe(), 20_000);
  const logged = (msg: string) => lines.filter((line) => line.msg === msg);
  /** stop(), failing the test when it takes longer than the bound. */
  const stop = async () => {
    const started = performance.now();
    await follower.stop();
    expect(performance.now() - started).toBeLessThan(stopBoundMs);
  };
  return { follower, events, connections, failures, lines, logged, until, stop };
}

const event = (type: string, action: string, id: string) =>
  `${JSON.stringify({ Type: type, Action: action, Actor: { ID: id, Attributes: {} } })}\n`;

describe('DockerEventFollower against HTTP servers of our own', () => {
  let dir: string;
  let server: Server;
  let docker: Docker;
  /** What the server does with the next requests. */
  let answer: (req: IncomingMessage, res: ServerResponse) => void;
  /** Requests received, and whether each one's connection has closed. */
  const requests: { url: string; closed: boolean }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vouch-events-'));
    const socketPath = join(dir, 'docker.sock');
    server = createServer((req, res) => {
      const request = { url: req.url ?? '', closed: false };
      requests.push(request);
      res.on('close', () => {
        request.closed = true;
      });
      answer(req, res);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    docker = new Docker({ socketPath });
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Answers with these lines and keeps the stream open. */
  const streaming =
    (...lines: string[]) =>
    (_: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      for (const line of lines) res.write(line);
    };

  it('asks for the types and actions given, hands on their events in order, ignores other lines', async () => {
    answer = streaming(
      event('image', 'tag', 'sha256:1'),
      event('network', 'connect', 'n'), // a type not asked for
      'not json\n',
      event('image', 'tag', ''), // no actor
      `${JSON.stringify({ Type: 'image', Action: 'x'.repeat(300), Actor: { ID: 'a' } })}\n`,
      event('container', 'start', 'c1'),
    );
    const f = followerOn(docker, { types: ['image', 'container'], actions: ['tag', 'start'] });
    const first = requests.length;
    await f.follower.start();
    try {
      expect(f.connections).toEqual(['connected']);
      await f.until('two events', () => f.events.length === 2);
      expect(f.events.map((e) => `${e.Type} ${e.Action} ${e.Actor.ID}`)).toEqual([
        'image tag sha256:1',
        'container start c1',
      ]);
      await f.until('four ignored', () => f.logged('ignored a Docker event').length === 4);
      expect(f.logged('following Docker events')).toHaveLength(1);
      const filters = new URL(requests[first]?.url ?? '', 'http://docker').searchParams.get(
        'filters',
      );
      expect(JSON.parse(filters ?? '')).toEqual({
        type: ['image', 'container'],
        event: ['tag', 'start'],
      });
    } finally {
      await f.stop();
    }
    await f.until('the connection closed', () => requests[first]?.closed === true);
  });

  it('reconnects with backoff: doubling to the cap, back to the first delay after a catch-up', async () => {
    // Each connection ends at once; the first four catch-ups fail.
    answer = (_, res) => {
      res.writeHead(200);
      res.end();
    };
    let catchUps = 0;
    const f = followerOn(docker, {
      types: ['image'],
      actions: ['tag'],
      onConnected: async () => {
        if (++catchUps <= 4) throw new Error(`catch-up ${catchUps} failed`);
      },
    });
    await f.follower.start();
    try {
      await f.until('seven connections', () => f.connections.length >= 14);
      expect(f.connections.slice(0, 14)).toEqual([
        // Not caught up yet: every connection is a first one.
        'connected',
        20,
        'connected',
        40,
        'connected',
        80,
        'connected',
        80,
        // Caught up: the stream's end is a lost connection, retried after the first delay.
        'connected',
        20,
        'again',
        20,
        'again',
        20,
      ]);
      expect(f.failures[0]?.code).toBe('UNAVAILABLE');
      expect(f.failures[0]?.message).toBe('cannot reach Docker: catch-up 1 failed');
      expect(f.failures[4]?.message).toBe('cannot reach Docker: Docker ended the event stream');
      expect(
        f.logged('Docker connection lost: cannot reach Docker: catch-up 1 failed')[0],
      ).toMatchObject({ level: 40, code: 'UNAVAILABLE', retryInMs: 20 });
    } finally {
      await f.stop();
    }
  });

  it('is BAD_DATA, a lost connection, when a line runs over 64 KiB', async () => {
    answer = streaming('x'.repeat(65 * 1024));
    const f = followerOn(docker, {
      types: ['image'],
      actions: ['tag'],
      backoff: { initialMs: 5000, maxMs: 5000 },
    });
    const first = requests.length;
    await f.follower.start();
    try {
      await f.until('the disconnect', () => f.failures.length === 1);
      expect(f.failures[0]).toMatchObject({
        code: 'BAD_DATA',
        message: 'Docker sent an event line over 64 KiB',
      });
      // The connection is closed before the wait to retry.
      await f.until('the connection closed', () => requests[first]?.closed === true);
      expect(f.connections).toEqual(['connected', 5000]);
    } finally {
      await f.stop();
    }
  });

  it('logs a handler that fails and goes on with the next event', async () => {
    answer = streaming(event('image', 'tag', 'one'), event('image', 'tag', 'two'));
    const f = followerOn(docker, {
      types: ['image'],
      actions: ['tag'],
      onEvent: async (e) => {
        if (e.Actor.ID === 'one') throw new Error('no space left');
      },
    });
    await f.follower.start();
    try {
      await f.until('both events', () => f.events.length === 2);
      await f.until(
        'the warning',
        () => f.logged('cannot handle a Docker event: no space left').length === 1,
      );
      expect(f.logged('cannot handle a Docker event: no space left')[0]).toMatchObject({
        level: 40,
        code: 'INTERNAL',
        event: 'image tag',
      });
      expect(f.connections).toEqual(['connected']);
    } finally {
      await f.stop();
    }
  });

  it('stops within the bound while a request is not answered, and closes it', async () => {
    answer = () => {}; // never answers
    const f = followerOn(docker, { types: ['image'], actions: ['tag'] });
    const first = requests.length;
    const started = f.follower.start();
    await f.until('the request', () => requests.length > first);
    await f.stop();
    await started;
    await f.until('the connection closed', () => requests[first]?.closed === true);
    expect(f.connections).toEqual([]);
  });

  it('stops within the bound while it waits to retry', async () => {
    const gone = new Docker({ socketPath: join(dir, 'no.sock') });
    const f = followerOn(gone, {
      types: ['image'],
      actions: ['tag'],
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    });
    await f.follower.start();
    expect(f.connections).toEqual([60_000]);
    expect(f.failures[0]?.message).toMatch(/^cannot reach Docker: connect ENOENT /);
    await f.stop();
  });
});

describeWith('docker', 'DockerEventFollower against dockerd', () => {
  let daemon: Dockerd;

  beforeAll(async () => {
    daemon = await startDockerd();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('follows events, reconnects when dockerd restarts, events arrive again, and stops within the bound', async () => {
    const f = followerOn(daemon.docker, { types: ['image'], actions: ['tag'] });
    await f.follower.start();
    try {
      expect(f.connections).toEqual(['connected']);
      const id = await buildScratchImage(daemon.docker, 'vouch-test/events:1', { 'a.txt': 'A' });
      await f.until('the tag event', () => f.events.some((e) => e.Actor.ID === id));
      expect(f.events.find((e) => e.Actor.ID === id)).toMatchObject({
        Type: 'image',
        Action: 'tag',
      });

      await daemon.restart();
      await f.until('a reconnect', () => f.connections.includes('again'));
      // Lost when dockerd stopped: the first delay, and a catch-up again once back.
      expect(f.connections[1]).toBe(20);
      expect(f.failures[0]?.code).toBe('UNAVAILABLE');
      const after = await buildScratchImage(daemon.docker, 'vouch-test/events:2', { 'b.txt': 'B' });
      await f.until('an event after the restart', () => f.events.some((e) => e.Actor.ID === after));
    } finally {
      await f.stop();
    }
  });
});
