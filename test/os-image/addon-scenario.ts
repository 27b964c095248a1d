import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { parse as parseYaml } from 'yaml';
import { agentRequest } from '../../agent/device/agent';
import { waitFor } from '../../scripts/lib/services';
import { serveLog } from '../device/agent/harness';
import { cliBundle, testWorld } from '../helpers/device';
import { startMosquitto } from '../helpers/mosquitto';

/**
 * The add-on's entrypoint, os-image/addon/run.sh, run for real as the Supervisor would start
 * it, in a network namespace of its own where 172.30.32.2, the Supervisor's ingress proxy,
 * is a local address (addon.test.ts starts this file there): the add-on's default options
 * with a log mirror served over HTTP, the log's root in /config, a stand-in Supervisor API
 * that names a real mosquitto. Prints what it saw as one JSON object for the test to judge.
 */

const ingressProxy = '172.30.32.2';
const ingressPort = 8099;
const token = 'supervisor-t0ken';

interface Answer {
  readonly status?: number;
  readonly type?: string;
  readonly body?: string;
  readonly error?: string;
}

/** An HTTP request to the ingress port from `localAddress`. */
function ingressRequest(path: string, localAddress: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve) => {
    const sent = request(
      { host: '127.0.0.1', port: ingressPort, path, method, localAddress, timeout: 5000 },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode, type: response.headers['content-type'], body }),
        );
      },
    );
    sent.on('timeout', () => sent.destroy(new Error('timed out')));
    sent.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ error: error.code ?? error.message }),
    );
    sent.end();
  });
}

async function main(): Promise<void> {
  const dirs: string[] = [];
  const temp = async (name: string) => {
    const dir = await mkdtemp(join(tmpdir(), name));
    dirs.push(dir);
    return dir;
  };
  const world = await testWorld();
  const log = await serveLog(world);
  const broker = await startMosquitto();

  // The Supervisor's services API as an add-on with `services: [mqtt:want]` sees it.
  const asked: { path: string | undefined; authorized: boolean }[] = [];
  const supervisor = createServer((incoming, response) => {
    const authorized = incoming.headers.authorization === `Bearer ${token}`;
    asked.push({ path: incoming.url, authorized });
    const found = authorized && incoming.url === '/services/mqtt';
    response.writeHead(found ? 200 : authorized ? 404 : 401, {
      'content-type': 'application/json',
    });
    const data = { host: '127.0.0.1', port: broker.port, ssl: false, username: 'addons' };
    response.end(JSON.stringify(found ? { result: 'ok', data } : { result: 'error' }));
  });
  await new Promise<void>((resolve) => supervisor.listen(0, '127.0.0.1', resolve));
  const supervisorUrl = `http://127.0.0.1:${(supervisor.address() as AddressInfo).port}`;

  // The container's file system: /data/options.json as the Supervisor writes it, /config.
  const prefix = await temp('vouch-addon-');
  await mkdir(join(prefix, 'data'));
  await mkdir(join(prefix, 'config'));
  const addon = parseYaml(await readFile('os-image/addon/config.yaml', 'utf8'));
  const options = { ...addon.options, mirrors: [log.url] };
  await writeFile(join(prefix, 'data/options.json'), JSON.stringify(options));
  await copyFile(world.rootPath, join(prefix, 'config/root.json'));
  // `vouch` on the PATH, as the Dockerfile links it.
  const bin = await temp('vouch-addon-bin-');
  await symlink(cliBundle, join(bin, 'vouch'));

  const child: ChildProcess = spawn('os-image/addon/run.sh', [], {
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      VOUCH_ADDON_PREFIX: prefix,
      SUPERVISOR_TOKEN: token,
      VOUCH_SUPERVISOR_URL: supervisorUrl,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const lines: Record<string, unknown>[] = [];
  let rest = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part));
      } catch {
        lines.push({ msg: part });
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const exitError = () =>
    child.exitCode === null
      ? undefined
      : new Error(`run.sh exited (${child.exitCode}): ${JSON.stringify(lines.slice(-5))}`);

  const observer = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
  const discovery: { topic: string; payload: string }[] = [];
  observer.on('message', (topic, payload) =>
    discovery.push({ topic, payload: payload.toString() }),
  );
  await observer.subscribeAsync('homeassistant/device/+/config', { qos: 1 });

  try {
    const logged = (message: string) => lines.some((line) => line.msg === message);
    await waitFor('the agent to be ready', async () => logged('ready'), 30_000, exitError);
    await waitFor('discovery', async () => discovery.length > 0, 15_000, exitError);
    const socket = join(prefix, 'run/vouch/api.sock');
    let status: Record<string, unknown> = {};
    await waitFor(
      'a synced trust state',
      async () => {
        status = (await agentRequest(socket, 'GET', '/v1/status')).body as typeof status;
        return status.origin !== null && status.origin !== undefined;
      },
      15_000,
      exitError,
    );
    const ingress = {
      page: await ingressRequest('/', ingressProxy),
      status: await ingressRequest('/v1/status', ingressProxy),
      sync: await ingressRequest('/v1/sync', ingressProxy, 'POST'),
      fromElsewhere: await ingressRequest('/', '127.0.0.1'),
    };
    const agentYaml = parseYaml(await readFile(join(prefix, 'data/agent.yaml'), 'utf8'));
    child.kill('SIGTERM');
    const exit = await exited;
    const report = {
      prefix,
      stdout,
      asked,
      discovery: discovery[0],
      status,
      ingress,
      agentYaml,
      exit,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } catch (error) {
    process.stderr.write(`${JSON.stringify(lines.slice(-20), null, 1)}\n`);
    throw error;
  } finally {
    child.kill('SIGKILL');
    await observer.endAsync(true);
    await new Promise((resolve) => supervisor.close(resolve));
    await broker.stop();
    await log.stop();
    for (const dir of [...dirs, world.base, world.logDir])
      await rm(dir, { recursive: true, force: true });
  }
}

await main();
