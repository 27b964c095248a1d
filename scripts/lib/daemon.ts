import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

/** A daemon started for a test or a benchmark, with the tail of its output for error messages. */
export interface Daemon {
  readonly child: ChildProcess;
  /** Why it stopped, when it stopped before we asked it to. */
  exitError(): Error | undefined;
  stop(): Promise<void>;
}

/** `env`: the daemon's whole environment; default, this process's. */
export function startDaemon(
  command: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Daemon {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env && { env }) });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.on('error', (error) => {
    spawnError = error;
  });
  let stopping = false;
  return {
    child,
    exitError() {
      if (spawnError) return spawnError;
      if (stopping || child.exitCode === null) return undefined;
      return new Error(`${command} exited with ${child.exitCode}:\n${output}`);
    },
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
