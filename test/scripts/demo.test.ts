import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { expect, it } from 'vitest';
import { agentRequest } from '../../agent/device/agent';
import { waitFor } from '../../scripts/lib/services';

/**
 * `npm start` (scripts/demo.ts, after the build that global-setup.ts has done): the demo
 * publisher and agent come up, the samples verify over the API, Ctrl-C stops all of it.
 */
it('npm start: serves a demo log, its agent verifies a sample TRUSTED and one REVOKED, Ctrl-C exits 0', async () => {
  const home = join(await mkdtemp(join(tmpdir(), 'vouch-demo-')), '.vouch');
  const demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
    env: { ...process.env, VOUCH_DEMO_DIR: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  demo.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  demo.stderr.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => demo.once('exit', resolve));
  try {
    await waitFor(
      'the demo to be ready',
      async () => out.includes('Ctrl-C stops the demo'),
      60_000,
      () => (demo.exitCode === null ? undefined : new Error(`the demo exited: ${out}`)),
    );
    expect(out).toMatch(/samples\/hello\.txt\s+TRUSTED/);
    expect(out).toMatch(/samples\/mistake\.txt\s+REVOKED\s+.*signed by mistake/);
    expect(out).toMatch(/samples\/unsigned\.txt\s+UNKNOWN/);
    // The API the demo points at answers as it says.
    const socket = join(home, 'api.sock');
    const answer = await agentRequest(socket, 'POST', '/v1/verify', {
      body: { path: join(home, 'samples', 'mistake.txt') },
    });
    expect(answer.body).toMatchObject({ results: [{ status: 'REVOKED' }], exitCode: 4 });
    // The agent reports to the embedded broker the demo names: its status, retained.
    const url = /MQTT: an embedded broker at (mqtt:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
    expect(url, out).toBeDefined();
    const client = await connectAsync(url as string);
    try {
      const retained = new Promise<string>((resolve) =>
        client.on('message', (_topic, payload, packet) => {
          if (packet.retain) resolve(payload.toString());
        }),
      );
      await client.subscribeAsync('vouch/+/state');
      expect(JSON.parse(await retained)).toMatchObject({ origin: 'demo.example.org/log' });
    } finally {
      await client.endAsync();
    }
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    // The agent is gone with it: nothing listens on its socket.
    await expect(agentRequest(socket, 'GET', '/healthz')).rejects.toThrow(/no agent is listening/);
  } finally {
    demo.kill('SIGKILL');
  }
});
