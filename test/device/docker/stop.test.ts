import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Docker from 'dockerode';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enforce } from '../../../agent/device/docker/enforce';
import type { ImageResult } from '../../../agent/device/docker/image';
import { containerStopper } from '../../../agent/device/docker/stop';
import type { Supervisor } from '../../../agent/device/supervisor';
import { rejectsWith } from '../../helpers/errors';

/**
 * How enforcement stops a container in a Home Assistant add-on: through a stand-in
 * Supervisor served here, which answers as supervisor/api does (the add-on's own info,
 * `POST /addons/<slug>/stop`, `POST /core/stop`, errors as {"result": "error", "message"}).
 * Stopping through a real dockerd is tested in watch.test.ts.
 */

const token = 'supervisor-t0ken';
const requests: string[] = [];
let supervisor: Supervisor;
const server = createServer((request, response) => {
  const line = `${request.method} ${request.url}`;
  requests.push(line);
  const answer = (status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  if (request.headers.authorization !== `Bearer ${token}`) {
    response.writeHead(401, { 'content-type': 'text/plain' });
    response.end('401: Unauthorized');
  } else if (line === 'GET /addons/self/info') {
    answer(200, { result: 'ok', data: { slug: 'local_vouch', name: 'vouch' } });
  } else if (line === 'POST /addons/broken/stop') {
    answer(400, { result: 'error', message: "App broken isn't running" });
  } else if (/^POST \/(?:addons\/[a-z0-9_]+|core)\/stop$/.test(line)) {
    answer(200, { result: 'ok', data: {} });
  } else {
    answer(404, { result: 'error', message: 'not found' });
  }
});

// Docker at a socket nobody listens on: what goes through Docker fails, saying so.
const noDocker = new Docker({ socketPath: '/nonexistent/docker.sock' });
const container = (name: string) => ({ id: `${name}-id`, name });

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  supervisor = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token };
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('stopping a container in a Home Assistant add-on', () => {
  it('stops add-ons and Core through the Supervisor, so that they stay stopped', async () => {
    requests.length = 0;
    const stop = containerStopper(noDocker, supervisor);
    await stop(container('app_core_mosquitto'));
    await stop(container('addon_a0d7b954_nodered')); // named before the 2026 renaming
    await stop(container('homeassistant'));
    expect(requests).toEqual([
      'GET /addons/self/info',
      'POST /addons/core_mosquitto/stop',
      'POST /addons/a0d7b954_nodered/stop',
      'POST /core/stop',
    ]);
  });

  it('never stops its own add-on nor the Supervisor and its plugins', async () => {
    requests.length = 0;
    const stop = containerStopper(noDocker, supervisor);
    for (const name of [
      'app_local_vouch',
      'addon_local_vouch',
      'hassio_supervisor',
      'hassio_dns',
    ]) {
      const error = await rejectsWith(stop(container(name)), 'STOP_REFUSED');
      expect(error.message, name).toMatch(name.startsWith('hassio') ? /Supervisor/ : /own add-on/);
    }
    // Its own slug is asked once; nothing was stopped.
    expect(requests).toEqual(['GET /addons/self/info']);
  });

  it('says what the Supervisor answered when it cannot stop an add-on', async () => {
    const error = await rejectsWith(
      containerStopper(noDocker, supervisor)(container('app_broken')),
      'UNAVAILABLE',
    );
    expect(error.message).toBe(
      "the Supervisor could not stop add-on broken: HTTP 400: App broken isn't running",
    );
    const refused = await rejectsWith(
      containerStopper(noDocker, { ...supervisor, token: 'wrong' })(container('homeassistant')),
      'UNAVAILABLE',
    );
    expect(refused.message).toBe('the Supervisor could not stop Home Assistant Core: HTTP 401');
  });

  it('stops any other container through Docker, and everything through Docker outside an add-on', async () => {
    requests.length = 0;
    for (const [stop, name] of [
      [containerStopper(noDocker, supervisor), 'my_own_container'],
      [containerStopper(noDocker, undefined), 'homeassistant'],
      [containerStopper(noDocker, undefined), 'app_core_mosquitto'],
    ] as const) {
      const error = await rejectsWith(stop(container(name)), 'UNAVAILABLE');
      expect(error.message, name).toMatch(/^Docker refused: connect ENOENT/);
    }
    expect(requests).toEqual([]);
  });

  it('a refused stop is enforcement that failed, with its code', async () => {
    const id = `sha256:${'c'.repeat(64)}`;
    const result: ImageResult = {
      ref: id,
      id,
      names: ['ghcr.io/home-assistant/amd64-hassio-supervisor:2026.11.0'],
      repoDigests: [],
      requirement: { match: '**', signer: null, required: true, mode: 'enforce' },
      status: 'REVOKED',
      code: 4,
      signer: 'notary@home-assistant.io',
      logIndex: 7,
      issuedAt: '2026-11-01T00:00:00Z',
      reason: 'key leaked',
      ignored: [],
    };
    const [action] = await enforce(
      noDocker,
      result,
      { mode: 'enforce', action: 'stop', allowedBy: null, why: 'REVOKED: key leaked' },
      {
        logger: pino({ level: 'silent' }),
        stop: containerStopper(noDocker, supervisor),
        container: container('hassio_supervisor'),
      },
    );
    expect(action).toMatchObject({
      action: 'failed',
      container: container('hassio_supervisor'),
      error: { code: 'STOP_REFUSED' },
    });
  });
});
