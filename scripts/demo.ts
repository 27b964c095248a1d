/**
 * `npm start`: the whole product on one machine, with embedded defaults in ./.vouch/
 * (created once, reused after). A demo publisher — keys, a trust root, a log with signed
 * sample files and a revocation — served on 127.0.0.1 by `vouch log serve`; the agent
 * syncing from it, its API socket in ./.vouch/, Docker watched when a socket is reachable.
 * It prints what is trusted and what is revoked, and the commands to try next; Ctrl-C stops
 * both cleanly. Every step is the built CLI (dist/vouch.cjs), as a user would run it.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { agentRequest } from '../agent/device/agent';
import { embeddedBroker, type MqttBroker } from './lib/mqtt-broker';
import { freePort } from './lib/services';

const run = promisify(execFile);
const cli = resolve(import.meta.dirname, '..', 'dist', 'vouch.cjs');
const home = resolve(process.env.VOUCH_DEMO_DIR ?? '.vouch');
const publisher = join(home, 'publisher');
const samples = join(home, 'samples');
const signer = 'demo@example.org';
const origin = 'demo.example.org/log';

/** Runs the CLI; its output is the demo's only on failure. */
async function vouch(...args: string[]): Promise<void> {
  try {
    await run(process.execPath, [cli, ...args], { cwd: home });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`vouch ${args.join(' ')} failed:\n${stderr ?? String(error)}`);
  }
}

/** The publisher and its samples: made the first time, reused after. */
async function publish(): Promise<void> {
  if (existsSync(join(publisher, 'done'))) return;
  mkdirSync(samples, { recursive: true });
  const key = join(publisher, 'keys', `${signer}.key`);
  await vouch(
    'keygen',
    '--out',
    join(publisher, 'keys'),
    '--signer',
    'root',
    '--signer',
    'log',
    '--signer',
    signer,
  );
  await vouch(
    ...['root', 'init', '--out', join(publisher, 'root.json'), '--threshold', '1'],
    ...['--root-key', join(publisher, 'keys', 'root.pub'), '--expires', '365'],
    ...['--log-origin', origin, '--log-key', join(publisher, 'keys', 'log.pub')],
    ...['--signer', `${signer}=${join(publisher, 'keys', `${signer}.pub`)}`],
    ...['--sign', join(publisher, 'keys', 'root.key')],
  );
  await vouch(
    ...['log', 'init', join(publisher, 'log'), '--origin', origin],
    ...['--key', join(publisher, 'keys', 'log.key'), '--root', join(publisher, 'root.json')],
  );
  const files = {
    'hello.txt': 'hello from a signed release\n',
    'update.bin': 'an update bundle, signed\n',
    'mistake.txt': 'signed by mistake, then revoked\n',
    'unsigned.txt': 'nobody signed this\n',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(samples, name), text);
  const sign = (file: string, ...more: string[]) =>
    vouch(
      'sign',
      '--key',
      key,
      '--signer',
      signer,
      '--file',
      join(samples, file),
      '--log',
      join(publisher, 'log'),
      ...more,
    );
  await sign('hello.txt');
  await sign('update.bin');
  await sign('mistake.txt');
  await sign('mistake.txt', '--status', 'revoked', '--reason', 'signed by mistake');
  writeFileSync(join(publisher, 'done'), '');
}

/** The socket path: in ./.vouch/ unless that is longer than a Unix socket path may be. */
function socketPath(): string {
  const near = join(home, 'api.sock');
  if (near.length <= 100) return near;
  return join(
    tmpdir(),
    `vouch-demo-${createHash('sha256').update(home).digest('hex').slice(0, 12)}.sock`,
  );
}

function agentConfig(port: number, socket: string, mqttUrl: string): string {
  return [
    '# Written by npm start (scripts/demo.ts) on each run: the demo publisher is on a new port.',
    `stateDir: ${JSON.stringify(join(home, 'state'))}`,
    `root: ${JSON.stringify(join(publisher, 'root.json'))}`,
    `mirrors: [${JSON.stringify(`http://127.0.0.1:${port}/`)}]`,
    'sync:',
    "  schedule: '*/5 * * * *'",
    '  jitter: 10s',
    'api:',
    `  socket: ${JSON.stringify(socket)}`,
    'mqtt:',
    `  url: ${JSON.stringify(mqttUrl)}`,
    '',
  ].join('\n');
}

/**
 * The MQTT broker the agent reports to: `VOUCH_DEMO_MQTT` (a broker URL) when set, else
 * one embedded in this process (scripts/lib/mqtt-broker.ts) on a free 127.0.0.1 port, so
 * that the whole loop runs on a fresh machine. A real deployment uses its own broker.
 */
async function broker(): Promise<MqttBroker> {
  const given = process.env.VOUCH_DEMO_MQTT;
  return given ? { url: given, close: async () => {} } : embeddedBroker();
}

/** The log server and the agent, stopped together whatever ends the demo. */
const children: ChildProcess[] = [];

function start(args: string[], log: string): ChildProcess {
  const out = openSync(join(home, log), 'a');
  const child = spawn(process.execPath, [cli, ...args], { cwd: home, stdio: ['ignore', out, out] });
  children.push(child);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  await exited;
}

async function serving(url: string, server: ChildProcess): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    if (server.exitCode !== null)
      throw new Error(`vouch log serve exited: see ${join(home, 'server.log')}`);
    if ((await fetch(url).catch(() => undefined))?.ok) return;
    await sleep(100);
  }
  throw new Error(`vouch log serve did not answer on ${url} within 10 s`);
}

interface Status {
  readonly origin: string | null;
  readonly size: number;
  readonly services: Record<string, { state: string; reason: string }>;
}

/** Waits until the agent answers and holds the demo log (its first sync done). */
async function ready(socket: string, agent: ChildProcess): Promise<Status> {
  for (let tries = 0; tries < 300; tries++) {
    if (agent.exitCode !== null)
      throw new Error(`the agent exited (${agent.exitCode}): see ${join(home, 'agent.log')}`);
    const answer = await agentRequest(socket, 'GET', '/v1/status').catch(() => undefined);
    const status = answer?.body as Status | undefined;
    if (status?.origin === origin) return status;
    await sleep(100);
  }
  throw new Error(`the agent did not sync within 30 s: see ${join(home, 'agent.log')}`);
}

interface Verified {
  readonly results: readonly { status: string | null; reason: string }[];
}

async function main(): Promise<void> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build`);
  mkdirSync(home, { recursive: true });
  await publish();
  const port = await freePort();
  const socket = socketPath();
  const config = join(home, 'agent.yaml');
  const mqtt = await broker();
  writeFileSync(config, agentConfig(port, socket, mqtt.url));
  const server = start(
    ['log', 'serve', join(publisher, 'log'), '--listen', `127.0.0.1:${port}`],
    'server.log',
  );
  // The agent's first sync must find the log served.
  await serving(`http://127.0.0.1:${port}/checkpoint`, server);
  const agent = start(['agent', '--config', config], 'agent.log');
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping the agent and the demo log server …\n');
    await Promise.all(children.map(stop));
    await mqtt.close();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  const status = await ready(socket, agent);
  const here = (path: string) => relative(process.cwd(), path) || '.';
  console.log(`vouch demo — everything in ${here(home)}/ (delete it to start over)\n`);
  console.log(
    `log ${status.origin}, ${status.size} entries, served on http://127.0.0.1:${port}/ by vouch log serve`,
  );
  console.log(`agent: API on ${here(socket)}; logs in ${here(join(home, 'agent.log'))}`);
  const { hostname: mqttHost, port: mqttPort } = new URL(mqtt.url);
  console.log(
    `MQTT: ${process.env.VOUCH_DEMO_MQTT ? 'the broker' : 'an embedded broker'} at ${mqtt.url}\n`,
  );
  for (const [name, health] of Object.entries(status.services)) {
    console.log(`  ${name.padEnd(8)} ${health.state.padEnd(9)} ${health.reason}`);
  }
  console.log('\nsample files, verified by the agent (POST /v1/verify):\n');
  for (const name of ['hello.txt', 'update.bin', 'mistake.txt', 'unsigned.txt']) {
    const path = join(samples, name);
    const answer = await agentRequest(socket, 'POST', '/v1/verify', { body: { path } });
    const result = (answer.body as Verified).results[0];
    console.log(
      `  ${here(path).padEnd(32)} ${(result?.status ?? 'COULD NOT CHECK').padEnd(9)} ${result?.reason ?? ''}`,
    );
  }
  const vouchCmd = `node ${here(cli)}`;
  console.log(`
try, in another terminal:
  curl -s --unix-socket ${here(socket)} http://vouch/v1/status
  curl -s --unix-socket ${here(socket)} -H 'content-type: application/json' \\
       -d '{"path":"${join(samples, 'hello.txt')}"}' http://vouch/v1/verify
  curl -sN --unix-socket ${here(socket)} http://vouch/v1/events      # live events
  curl -s --unix-socket ${here(socket)} http://vouch/metrics
  mosquitto_sub -h ${mqttHost} -p ${mqttPort || 1883} -t 'vouch/#' -t 'homeassistant/#' -v
  ${vouchCmd} agent status --config ${here(config)}
  ${vouchCmd} verify file --config ${here(config)} ${here(join(samples, 'hello.txt'))}

On a real device: vouch config init --root root.json --mirror URL --out /etc/vouch/agent.yaml,
then run vouch agent (README "From the demo to a device"). Ctrl-C stops the demo.`);
  await new Promise((done) => agent.once('exit', done));
  if (!stopping) {
    console.error(`the agent exited (${agent.exitCode}): see ${join(home, 'agent.log')}`);
    await stop(server);
    process.exit(1);
  }
}

main().catch(async (error: unknown) => {
  console.error(`npm start: ${(error as Error).message}`);
  await Promise.all(children.map(stop));
  process.exit(1);
});
