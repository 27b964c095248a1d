import type { Command } from 'commander';
import type { Config } from '../config';
import { asVouchError, type VouchError } from '../core/errors';
import type { Logger } from '../logger';
import { ExitCode, exitCodeFor } from './exit';

/** Where a command writes; injected so tests run the CLI in-process. */
export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export type OutputFormat = 'text' | 'json';

/** What a command hands back: its exit code, its data for `--output json`, and its text. */
export interface Report {
  readonly exitCode: ExitCode;
  readonly data: unknown;
  readonly text: string;
}

export interface Context {
  readonly config: Config;
  readonly logger: Logger;
  readonly output: OutputFormat;
  readonly io: Io;
}

/** The options every command takes (see addCommonOptions in program.ts). */
interface GlobalOptions {
  readonly output?: OutputFormat;
  readonly config?: string;
  readonly stateDir?: string;
  readonly logLevel?: Config['logLevel'];
}

export async function contextFor(command: Command, io: Io): Promise<Context> {
  const options = command.optsWithGlobals<GlobalOptions>();
  // Loaded when a command runs, like its action (Act in program.ts): not for --help.
  const [{ envOverrides, loadConfig, resolveConfigPath }, { createLogger }] = await Promise.all([
    import('../config'),
    import('../logger'),
  ]);
  const configPath = resolveConfigPath(options.config, io.env);
  const config = loadConfig(configPath, envOverrides(io.env), {
    stateDir: options.stateDir,
    logLevel: options.logLevel,
  });
  const logger = createLogger('cli', config.logLevel);
  logger.debug({ configPath: configPath ?? null }, 'configuration loaded');
  return { config, logger, output: options.output ?? 'text', io };
}

export function printReport(report: Report, output: OutputFormat, io: Io): void {
  if (output === 'json') io.stdout(`${JSON.stringify(report.data, null, 2)}\n`);
  else if (report.text) io.stdout(report.text.endsWith('\n') ? report.text : `${report.text}\n`);
}

/** Prints an error in the chosen format and returns the exit code for it. */
export function printError(error: unknown, output: OutputFormat, io: Io): ExitCode {
  const failure: VouchError = asVouchError(error);
  if (output === 'json') {
    io.stdout(`${JSON.stringify({ error: { code: failure.code, message: failure.message } })}\n`);
  } else {
    io.stderr(`vouch: ${failure.message}\n`);
  }
  if (failure.kind === 'internal' && error instanceof Error && error.stack) {
    io.stderr(`${error.stack}\n`);
  }
  return exitCodeFor(failure.kind);
}

export { ExitCode };
