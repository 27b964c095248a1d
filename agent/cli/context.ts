import type { Command } from 'commander';
import type { Config } from '../config';
import { asVouchError, type VouchError } from '../core/errors';
import { ExitCode, exitCodeFor } from '../core/exit-codes';
import { escapeText, safe } from '../core/text';
import type { Logger } from '../logger';

/** Where a command writes; injected so tests run the CLI in-process. */
export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** The terminal's width when stdout (stderr) is a terminal; help wraps at 80 otherwise. */
  readonly stdoutColumns?: number;
  readonly stderrColumns?: number;
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
  /** The configuration read again from the same sources (the agent's SIGHUP). */
  readonly readConfig: () => Config;
  /**
   * The command's logger (stderr, at the configured level), made at the first call: most
   * commands log nothing, and loading pino with pino-pretty would add ~10 ms to their start.
   */
  readonly logger: () => Promise<Logger>;
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
  const { envOverrides, loadConfig, resolveConfigPath } = await import('../config');
  const configPath = resolveConfigPath(options.config, io.env);
  const readConfig = () =>
    loadConfig(configPath, envOverrides(io.env), {
      stateDir: options.stateDir,
      logLevel: options.logLevel,
    });
  const config = readConfig();
  let logger: Promise<Logger> | undefined;
  const makeLogger = async () => {
    const { createLogger } = await import('../logger');
    const made = createLogger('cli', config.logLevel);
    made.debug({ configPath: configPath ?? null }, 'configuration loaded');
    return made;
  };
  return {
    config,
    readConfig,
    logger: () => (logger ??= makeLogger()),
    output: options.output ?? 'text',
    io,
  };
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
    // Messages quote input (paths, names, what a mirror said): escaped like text output.
    io.stderr(safe`vouch: ${failure.message}\n`);
  }
  if (failure.kind === 'internal' && error instanceof Error && error.stack) {
    io.stderr(`${error.stack.split('\n').map(escapeText).join('\n')}\n`);
  }
  return exitCodeFor(failure.kind);
}

export { ExitCode };
