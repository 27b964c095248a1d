import { mkdtemp, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadState } from '../../../agent/device';
import { addForkEvidence } from '../../../agent/device/store/status';
import { freePort, waitFor } from '../../../scripts/lib/services';
import { runCli } from '../../helpers/cli';
import { digestOf, grow, syncedDevice, testWorld, type World } from '../../helpers/device';
import { startMosquitto } from '../../helpers/mosquitto';
import { listenForNotifications } from '../../helpers/notify-listener';
import { describeWith } from '../../helpers/services';
import { serveLog, sha256Of, signContent, startAgent, stopAgent } from './harness';

/**
 * `vouch agent` as a process: its lifecycle (signals, systemd, reload), its syncs against a
 * real `vouch log serve`, re-verification after a commit, and what survives a kill -9.
 */

/** Polls `probe` until true, for at most 20 s. */
const until = (what: string, probe: () => Promise<boolean>) => waitFor(what, probe, 20_000);

let world: World;
const fileText = 'a release the agent is asked about\n';
let filePath: string;

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 3);
  const dir = await mkdtemp(join(tmpdir(), 'vouch-agent-files-'));
  filePath = join(dir, 'release.txt');
  await writeFile(filePath, fileText);
  await signContent(world, sha256Of(fileText), 'trusted', new Date(Date.UTC(2025, 6, 1)));
});

describe('vouch agent', () => {
  it('serves from its local state while the mirror is down (degraded), and recovers when it returns', async () => {
    const stateDir = await syncedDevice(world);
    const port = await freePort();
    const agent = await startAgent({
      stateDir,
      mirrors: [`http://127.0.0.1:${port}/`],
      // Every second, so that the test sees the next try soon.
      sync: { schedule: '* * * * * *', jitter: 0, connectTimeout: 500, timeout: 2000 },
    });
    try {
      const verified = await agent.request('POST', '/v1/verify', {
        digest: `sha256:${digestOf(0)}`,
      });
      expect(verified.status).toBe(200);
      expect(verified.body).toMatchObject({ results: [{ status: 'TRUSTED' }], exitCode: 0 });
      await until('the sync to fail', async () => {
        const status = (await agent.request('GET', '/v1/status')).body as {
          services: Record<string, { state: string; reason: string }>;
        };
        return status.services.sync?.state === 'degraded';
      });
      const health = await agent.request('GET', '/healthz');
      // A failed sync is degraded, not failed: the device still answers.
      expect(health.status).toBe(200);
      const server = await serveLog(world, port);
      try {
        await until('the sync to succeed', async () => {
          const status = (await agent.request('GET', '/v1/status')).body as {
            services: Record<string, { state: string }>;
          };
          return status.services.sync?.state === 'ok';
        });
      } finally {
        await server.stop();
      }
    } finally {
      expect((await stopAgent(agent)).code).toBe(0);
    }
  });

  it('re-evaluates a verified file after a revocation is synced, and tells its event stream', async () => {
    const local = await testWorld();
    const text = `revoked later ${Math.random()}\n`;
    const path = join(local.base, 'app.bin');
    await writeFile(path, text);
    await signContent(local, sha256Of(text), 'trusted', new Date(Date.UTC(2025, 6, 1)));
    const server = await serveLog(local);
    const stateDir = await mkdtemp(join(tmpdir(), 'vouch-agent-state-'));
    const agent = await startAgent({ stateDir, root: local.rootPath, mirrors: [server.url] });
    try {
      await until('the first sync', async () => {
        const answer = await agent.request('POST', '/v1/verify', { path });
        return (answer.body as { results: { status: string }[] }).results[0]?.status === 'TRUSTED';
      });
      const events: string[] = [];
      const stream = await fetchEvents(agent.socket, (event) => events.push(event));
      try {
        await signContent(local, sha256Of(text), 'revoked', new Date(Date.UTC(2025, 7, 1)));
        const synced = await agent.request('POST', '/v1/sync');
        expect(synced.status).toBe(200);
        const committed = performance.now();
        await until('the verdict event', async () =>
          events.some((event) => event.includes('"type":"verdict"') && event.includes('REVOKED')),
        );
        // The bound: a changed verdict within a second of the commit.
        expect(performance.now() - committed).toBeLessThan(1000);
        const verdicts = (await agent.request('GET', '/v1/verdicts')).body as {
          subjects: { subject: string; status: string }[];
        };
        expect(verdicts.subjects).toContainEqual(
          expect.objectContaining({ subject: path, status: 'REVOKED' }),
        );
        expect(events.some((event) => event.startsWith('event: sync'))).toBe(true);
        const metrics = await agent.request('GET', '/metrics');
        const exposition = String(metrics.body);
        expect(exposition).toMatch(/^vouch_verdicts\{status="REVOKED"\} 1$/m);
        expect(exposition).toMatch(/^vouch_log_size \d+$/m);
        expect(exposition).toMatch(/^vouch_last_sync_success_age_seconds \d/m);
        expect(exposition).toContain(
          `vouch_sync_duration_seconds_count{mirror="${server.url}",result="ok"}`,
        );
        const hashed = Number(/^vouch_hashed_bytes_total (\d+)$/m.exec(exposition)?.[1]);
        expect(hashed).toBeGreaterThanOrEqual(Buffer.byteLength(text));
      } finally {
        stream.close();
      }
    } finally {
      await stopAgent(agent);
      await server.stop();
    }
  });

  it('answers a known file after kill -9 and a restart from its digest cache, without hashing', async () => {
    const stateDir = await syncedDevice(world);
    const base = await mkdtemp(join(tmpdir(), 'vouch-agent-'));
    const config = { stateDir, sync: { schedule: '0 0 1 1 *' } };
    const first = await startAgent(config, {}, base);
    const answer = await first.request('POST', '/v1/verify', { path: filePath });
    expect(answer.body).toMatchObject({ results: [{ status: 'TRUSTED' }] });
    await until(
      'the digest cache to be written',
      async () => (await stat(join(stateDir, 'cache')).catch(() => undefined)) !== undefined,
    );
    await until('the cache write', async () => {
      const files = await readFile(join(stateDir, 'cache', 'digests.json'), 'utf8').catch(() => '');
      return files.includes(sha256Of(fileText));
    });
    expect((await stopAgent(first, 'SIGKILL')).signal).toBe('SIGKILL');
    const second = await startAgent(config, {}, base);
    try {
      const again = await second.request('POST', '/v1/verify', { path: filePath });
      expect(again.body).toMatchObject({
        results: [{ status: 'TRUSTED', sha256: sha256Of(fileText) }],
      });
      const status = (await second.request('GET', '/v1/status')).body as {
        services: Record<string, { reason: string }>;
      };
      // Answered from the cache: no hash worker was started.
      expect(status.services.hashing?.reason).toMatch(/idle/);
    } finally {
      await stopAgent(second);
    }
  });

  it('exits 0 within 5 s on SIGTERM during a sync, leaving a valid state', async () => {
    const stateDir = await syncedDevice(world);
    // A mirror that takes every request and never answers: the sync hangs in a request.
    const hanging = createServer(() => {});
    const port = await freePort();
    await new Promise<void>((resolve) => hanging.listen(port, '127.0.0.1', resolve));
    try {
      const agent = await startAgent({
        stateDir,
        mirrors: [`http://127.0.0.1:${port}/`],
        sync: { timeout: 60_000, maxAge: 0 },
      });
      await agent.logged('sync');
      const stopped = await stopAgent(agent);
      expect(stopped.code).toBe(0);
      expect(stopped.ms).toBeLessThan(5000);
      expect((await loadState(stateDir))?.checkpoint.checkpoint.size).toBe(world.size);
    } finally {
      hanging.closeAllConnections();
      hanging.close();
    }
  });

  it('tells a fork another process found (fork.json, nothing committed) at once, and its clearing', async () => {
    const stateDir = await syncedDevice(world);
    const agent = await startAgent({ stateDir, sync: { schedule: '0 0 1 1 *' } });
    type Status = { fork: boolean; forkEvidence?: { reason: string }[] };
    const status = async () => (await agent.request('GET', '/v1/status')).body as Status;
    const trustHealth = async () =>
      (
        (await agent.request('GET', '/healthz')).body as {
          services: Record<string, { state: string; reason: string }>;
        }
      ).services.trust;
    try {
      expect(await status()).toMatchObject({ fork: false });
      // What a `vouch sync` that meets a forked mirror writes, and all it writes.
      await addForkEvidence(stateDir, {
        detectedAt: Date.now(),
        source: 'http://127.0.0.1:9/',
        reason: 'the mirror signed a different tree of the same size',
        local: 'local checkpoint note',
        remote: 'remote checkpoint note',
      });
      // Asked right after: the answer reads the evidence, not waiting for the watcher.
      expect(await status()).toMatchObject({
        fork: true,
        forkEvidence: [{ reason: 'the mirror signed a different tree of the same size' }],
      });
      await until(
        'the trust service to say the fork',
        async () => (await trustHealth())?.reason.startsWith('fork detected') === true,
      );
      expect((await trustHealth())?.state).toBe('degraded');
      const cleared = await runCli(['fork', 'clear', '--state-dir', stateDir]);
      expect(cleared.exitCode, cleared.stderr).toBe(0);
      expect(await status()).toMatchObject({ fork: false });
      await until('the trust service to be ok', async () => (await trustHealth())?.state === 'ok');
    } finally {
      await stopAgent(agent);
    }
  });

  it('keeps its configuration when SIGHUP brings a bad one, and takes a good one', async () => {
    const stateDir = await syncedDevice(world);
    const agent = await startAgent({ stateDir, logLevel: 'info' });
    try {
      const good = await readFile(agent.configPath, 'utf8');
      await writeFile(agent.configPath, 'sync: {schedule: "not cron"}\n');
      const from = agent.lines.length;
      agent.child.kill('SIGHUP');
      const refused = await agent.logged('configuration not reloaded', from);
      expect(refused).toMatchObject({ code: 'CONFIG_INVALID' });
      expect((await agent.request('GET', '/v1/status')).status).toBe(200);
      await writeFile(agent.configPath, good.replace('logLevel: info', 'logLevel: warn'));
      agent.child.kill('SIGHUP');
      await agent.logged('configuration reloaded', from);
    } finally {
      expect((await stopAgent(agent)).code).toBe(0);
    }
  });

  it('imports a snapshot dropped in its inbox, and rejects garbage with a reason', async () => {
    const local = await testWorld();
    await grow(local, 2);
    const stateDir = await syncedDevice(local);
    const agent = await startAgent({ stateDir, sync: { schedule: '0 0 1 1 *' } });
    try {
      // A newer device exports what this one lacks, as a USB stick would bring it.
      await grow(local, 3);
      const newer = await syncedDevice(local);
      const snapshot = join(local.base, 'update.tar');
      const exported = await runCli([
        'snapshot',
        'export',
        '--state-dir',
        newer,
        '--out',
        snapshot,
      ]);
      expect(exported.exitCode).toBe(0);
      const inbox = join(stateDir, 'inbox');
      await writeFile(join(inbox, 'garbage.tar'), 'not a snapshot');
      await rename(snapshot, join(inbox, 'update.tar'));
      await until('the import', async () => {
        const status = (await agent.request('GET', '/v1/status')).body as { size: number };
        return status.size === local.size;
      });
      expect(await readFile(join(inbox, 'rejected', 'garbage.tar.reason'), 'utf8')).toMatch(
        /^SNAPSHOT_INVALID/,
      );
      await until(
        'the move to done/',
        async () =>
          (await stat(join(inbox, 'done', 'update.tar')).catch(() => undefined)) !== undefined,
      );
    } finally {
      expect((await stopAgent(agent)).code).toBe(0);
    }
  });

  describeWith('systemd', 'under systemd', () => {
    it('tells systemd READY=1 when serving and STOPPING=1 when stopping', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'vouch-notify-'));
      const notifySocket = join(dir, 'notify.sock');
      const { child: listener, got } = await listenForNotifications(notifySocket);
      const received = () => got.flatMap((datagram) => datagram.lines);
      try {
        const stateDir = await syncedDevice(world);
        const agent = await startAgent({ stateDir }, { NOTIFY_SOCKET: notifySocket });
        await until('READY=1', async () => received().includes('READY=1'));
        expect((await stopAgent(agent)).code).toBe(0);
        await until('STOPPING=1', async () => received().includes('STOPPING=1'));
      } finally {
        listener.kill();
      }
    });
  });
});

/** Follows `GET /v1/events` over the socket, calling `onEvent` with each raw event. */
async function fetchEvents(socket: string, onEvent: (event: string) => void) {
  const { request } = await import('node:http');
  const req = request({ socketPath: socket, path: '/v1/events' });
  let buffer = '';
  const opened = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        buffer += text;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          onEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
      });
      resolve();
    });
    req.on('error', reject);
  });
  req.end();
  await opened;
  return { close: () => req.destroy() };
}

describeWith('mqtt', 'vouch agent and its MQTT buttons', () => {
  it('"Verify all now" checks again a file verified before, which changed since, and tells it', async () => {
    const broker = await startMosquitto();
    const stateDir = await syncedDevice(world);
    const path = join(await mkdtemp(join(tmpdir(), 'vouch-agent-button-')), 'release.txt');
    await writeFile(path, fileText);
    const agent = await startAgent({
      stateDir,
      sync: { schedule: '0 0 1 1 *' },
      mqtt: { url: broker.url, nodeId: 'buttons' },
    });
    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    try {
      const first = await agent.request('POST', '/v1/verify', { path });
      expect(first.body).toMatchObject({ results: [{ status: 'TRUSTED' }] });
      await writeFile(path, 'not what was signed\n');
      await until('the agent to be connected to the broker', async () => {
        const status = (await agent.request('GET', '/v1/status')).body as {
          services: Record<string, { state: string }>;
        };
        return status.services.mqtt?.state === 'ok';
      });
      const events: { type: string; subject?: string; status?: string }[] = [];
      client.on('message', (_topic, payload) => events.push(JSON.parse(payload.toString())));
      await client.subscribeAsync('vouch/buttons/events', { qos: 1 });
      await client.publishAsync('vouch/buttons/command/verify', 'PRESS', { qos: 1 });
      await until('the verdict event', async () =>
        events.some((event) => event.type === 'verdict' && event.subject === path),
      );
      expect(events.find((event) => event.type === 'verdict')).toMatchObject({
        subject: path,
        status: 'UNKNOWN',
        previous: 'TRUSTED',
      });
      const { subjects } = (await agent.request('GET', '/v1/verdicts')).body as {
        subjects: { kind: string; subject: string; status: string }[];
      };
      expect(subjects).toContainEqual(
        expect.objectContaining({ kind: 'file', subject: path, status: 'UNKNOWN' }),
      );
    } finally {
      await client.endAsync(true);
      await stopAgent(agent);
      await broker.stop();
    }
  });
});
