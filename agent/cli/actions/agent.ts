import { version } from '../../../package.json';
import { VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { safe } from '../../core/text';
import type { Health } from '../../device/agent';
import { agentRequest, runAgent } from '../../device/agent';
import type { Context } from '../context';

/** How long stopping may take; what is still running then is abandoned (crash-safe). */
const stopMs = 2000;
/** Then the process ends, whatever handle is still open: SIGTERM means gone within 5 s. */
const exitGraceMs = 500;

export async function agent(ctx: Context) {
  const { createLogger } = await import('../../logger');
  const logger = createLogger('daemon', ctx.config.logLevel);
  const { signal } = await runAgent({
    config: ctx.config,
    reloadConfig: ctx.readConfig,
    logger,
    env: ctx.io.env,
    version,
    stopMs,
  });
  setTimeout(() => process.exit(process.exitCode ?? 0), exitGraceMs).unref();
  return { exitCode: ExitCode.OK, data: { stopped: signal }, text: '' };
}

interface AgentStatus {
  readonly version: string;
  readonly origin: string | null;
  readonly size: number;
  readonly rootVersion: number | null;
  readonly checkpointTime: string | null;
  readonly stale: boolean;
  readonly fork: boolean;
  readonly lastSync: { readonly at: number; readonly ok: boolean } | null;
  readonly services: Readonly<Record<string, Health>>;
  readonly hashing: { readonly workers: number } | null;
}

export async function agentStatus(ctx: Context) {
  const socket = ctx.config.api.socket;
  const answer = await agentRequest(socket, 'GET', '/v1/status');
  if (answer.status !== 200) {
    const error = (answer.body as { error?: { code?: string; message?: string } }).error;
    throw new VouchError(
      'UNAVAILABLE',
      `the agent at ${socket} answered ${answer.status}: ${error?.message ?? 'no reason given'}`,
    );
  }
  const status = answer.body as AgentStatus;
  const lines = [
    status.origin === null
      ? 'no trust state yet'
      : safe`${status.origin}: size ${status.size}, root v${status.rootVersion}, checkpoint ${status.checkpointTime ?? 'without signed time'}${status.stale ? ', STALE' : ''}${status.fork ? ', FORK DETECTED' : ''}`,
    status.lastSync
      ? `last sync: ${new Date(status.lastSync.at).toISOString()} ${status.lastSync.ok ? 'ok' : 'failed'}`
      : 'last sync: none',
    ...Object.entries(status.services).map(
      ([name, health]) =>
        safe`${name.padEnd(8)} ${health.state.padEnd(8)} ${health.reason} (since ${health.since})`,
    ),
    `hashing: ${status.hashing ? `${status.hashing.workers} workers` : 'no plan'}; vouch ${status.version}`,
  ];
  return { exitCode: ExitCode.OK, data: status, text: lines.join('\n') };
}
