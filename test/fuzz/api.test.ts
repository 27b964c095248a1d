import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, parseVerifyRequest, startApi } from '../../agent/device/agent/api';
import type { ApiBackend, VerifyRequest } from '../../agent/device/agent/backend';
import { AgentEvents } from '../../agent/device/agent/events';
import { AgentMetrics } from '../../agent/device/agent/metrics';
import { call, type Target } from '../helpers/http';
import { fuzz, jsonMutants, params, parses } from './fuzz';

/**
 * The agent's API bodies: `POST /v1/verify` parsed from mutants of each valid request, and
 * a share of them sent through a real API server on a Unix socket in a temp directory.
 */

const requests = [
  { digest: `sha256:${'a'.repeat(64)}` },
  { digest: `merkle-sha256-1mib:${'b'.repeat(64)}` },
  { path: '/usr/bin/env' },
  { image: 'ghcr.io/example/app:1', deep: true },
];
const bodies = fc.oneof(...requests.map(jsonMutants));

function checkRequest(request: VerifyRequest): void {
  const keys = Object.keys(request);
  if ('digest' in request) expect(keys).toEqual(['digest']);
  else if ('path' in request) expect(request.path.startsWith('/')).toBe(true);
  else expect(typeof request.deep).toBe('boolean');
}

/** A backend that answers a verify with the request it was given. */
class EchoBackend implements ApiBackend {
  readonly events = new AgentEvents();
  readonly metrics = new AgentMetrics({
    verdictCounts: () => ({}),
    lastSyncSuccess: () => undefined,
    logSize: () => 0,
  });
  async status() {
    return {};
  }
  async verify(request: VerifyRequest) {
    checkRequest(request);
    return { request };
  }
  async verdicts() {
    return [];
  }
  async sync() {
    return {};
  }
  healthz() {
    return { ok: true, services: {} };
  }
}

describe('fuzz: API request bodies', () => {
  it('parses mutants of each verify request as one subject, or refuses them with USAGE', () => {
    fuzz(bodies, (bytes) => {
      const request = parses(() => parseVerifyRequest(bytes), ['USAGE']);
      if (request !== undefined) checkRequest(request);
    });
  });

  describe('through a real API server', () => {
    let dir: string;
    let api: Api;
    let target: Target;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'vouch-fuzz-api-'));
      target = { socketPath: join(dir, 'api.sock') };
      api = await startApi({
        socket: target.socketPath,
        backend: new EchoBackend(),
        logger: pino({ level: 'silent' }),
        version: 'fuzz',
      });
    });
    afterAll(async () => {
      await api.close();
      await rm(dir, { recursive: true, force: true });
    });

    // A request per case over the socket: a twentieth of the runs.
    it('answers each mutant 200 or 4xx with a typed error, and keeps answering', async () => {
      await fc.assert(
        fc.asyncProperty(bodies, async (bytes) => {
          const reply = await call(target, 'POST', '/v1/verify', {
            body: Buffer.from(bytes).toString('utf8'),
            headers: { 'Content-Type': 'application/json' },
          });
          if (reply.status === 200) return;
          expect([400, 413]).toContain(reply.status);
          const { error } = JSON.parse(reply.body) as { error: { code: string } };
          expect(['USAGE', 'PAYLOAD_TOO_LARGE']).toContain(error.code);
        }),
        params(1 / 20, 20),
      );
      expect((await call(target, 'GET', '/healthz')).status).toBe(200);
    });
  });
});
