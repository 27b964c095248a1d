import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { type AgentAnswer, agentRequest } from '../../../agent/device/agent';
import { freePort, waitFor } from '../../../scripts/lib/services';
import type { Command } from '../../../scripts/sea/targets';
import { cliBundle, grow, signerId, type World } from '../../helpers/device';
import { signedStatement } from '../../helpers/trust';

/**
 * The agent as a device runs it, `node dist/vouch.cjs agent --config FILE`, with its JSON
 * log lines collected, and the publisher's log served by `vouch log serve`.
 */

/** `node dist/vouch.cjs`: how a test runs vouch unless it says otherwise. */
const nodeBundle: Command = { file: process.execPath, args: [cliBundle], env: {} };

export interface RunningAgent {
  readonly child: ChildProcess;
  readonly socket: string;
  readonly configPath: string;
  /** Its stderr, parsed: pino JSON lines. */
  readonly lines: Record<string, unknown>[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<AgentAnswer>;
  /** Waits for a log line with this message (a substring), after `from` lines. */
  logged(message: string, from?: number): Promise<Record<string, unknown>>;
}

/** `vouch`: the program run (a single executable, test/scripts/sea/executable.test.ts). */
export async function startAgent(
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
  dir?: string,
  vouch: Command = nodeBundle,
): Promise<RunningAgent> {
  const base = dir ?? (await mkdtemp(join(tmpdir(), 'vouch-agent-')));
  const socket = join(base, 'api.sock');
  const configPath = join(base, 'agent.yaml');
  await writeFile(
    configPath,
    stringify({ logLevel: 'debug', ...config, api: { socket, ...(config.api as object) } }),
  );
  const child = spawn(vouch.file, [...vouch.args, 'agent', '--config', configPath], {
    env: {
      PATH: process.env.PATH,
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      ...vouch.env,
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // A test that fails before it stops its agent does not leave it running.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  const lines: Record<string, unknown>[] = [];
  let rest = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = rest + chunk.toString('utf8');
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part));
      } catch {
        lines.push({ msg: part, notJson: true });
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const agent: RunningAgent = {
    child,
    socket,
    configPath,
    lines,
    exited,
    request: (method, path, body) => agentRequest(socket, method, path, { body }),
    async logged(message, from = 0) {
      let found: Record<string, unknown> | undefined;
      await waitFor(
        `log line "${message}"`,
        async () => {
          found = lines.slice(from).find((line) => String(line.msg).includes(message));
          if (!found && child.exitCode !== null) {
            throw new Error(
              `the agent exited (${child.exitCode}): ${JSON.stringify(lines.slice(-5))}`,
            );
          }
          return found !== undefined;
        },
        30_000,
      );
      return found as Record<string, unknown>;
    },
  };
  await agent.logged('ready');
  return agent;
}

/** Stops the agent with `signal`; resolves with how it exited and how long that took (ms). */
export async function stopAgent(agent: RunningAgent, signal: NodeJS.Signals = 'SIGTERM') {
  const started = performance.now();
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill(signal);
  const how = await agent.exited;
  return { ...how, ms: performance.now() - started };
}

/** `vouch log serve` of the world's log on a free loopback port. */
export async function serveLog(world: World, port?: number) {
  const listen = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [cliBundle, 'log', 'serve', world.logDir, '--listen', `127.0.0.1:${listen}`],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${listen}/`;
  await waitFor(
    'the log server',
    async () => {
      const answer = await fetch(`${url}checkpoint`).catch(() => undefined);
      return answer?.ok === true;
    },
    10_000,
  );
  return {
    url,
    port: listen,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function sha256Of(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A statement about content `sha256`, appended to the world's log and published. */
export async function signContent(
  world: World,
  sha256: string,
  status: 'trusted' | 'revoked',
  at: Date,
): Promise<void> {
  const envelope = signedStatement(world.signer, {
    signer: signerId,
    subjects: [{ name: 'ghcr.io/example/files/content', sha256 }],
    status,
    issuedAt: at,
  });
  await grow(world, 0, [envelope]);
}
