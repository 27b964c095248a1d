import type { EventEmitter } from 'node:events';
import { Command, CommanderError, Option } from 'commander';
import { version } from '../../package.json';
import { VouchError } from '../core/errors';
import { logLevels } from '../log-levels';
import { agentCommand } from './commands/agent';
import { allowCommand } from './commands/allow';
import { authenticateCommand } from './commands/authenticate';
import { configCommand } from './commands/config';
import { envelopeCommand } from './commands/envelope';
import { forkCommand } from './commands/fork';
import { hwCommand } from './commands/hw';
import { keygenCommand } from './commands/keygen';
import { logCommand } from './commands/log';
import { rootCommand } from './commands/root';
import { signCommands } from './commands/sign';
import { snapshotCommand } from './commands/snapshot';
import { stateCommand } from './commands/state';
import { statusCommand } from './commands/status';
import { syncCommand } from './commands/sync';
import { verifyCommand } from './commands/verify';
import { watchCommand } from './commands/watch';
import {
  type Context,
  contextFor,
  ExitCode,
  type Io,
  type OutputFormat,
  printError,
  printReport,
  type Report,
} from './context';
import { examples, helpConfiguration, helpWidths } from './help';
import { repeatable, runsItself } from './options';

/**
 * A command's implementation, in agent/cli/actions/: it receives the command's context and
 * commander's action arguments (the positional arguments, then the options).
 */
export type Action<A extends unknown[]> = (ctx: Context, ...args: A) => Promise<Report> | Report;

/**
 * Wraps a command's action: loads its implementation when the command runs, builds its
 * context, prints its report, records its exit code. Loading is an `import()`, which the
 * bundle keeps lazy, so that a start evaluates only the definitions of the commands, and
 * the modules of the one that runs (docs/performance.md "Start-up").
 */
export type Act = <A extends unknown[]>(
  load: () => Promise<Action<A>>,
) => (...args: [...A, Command]) => Promise<void>;

const exitCodeHelp = `
Exit codes:
  0 TRUSTED / ok   1 UNTRUSTED   2 UNKNOWN   3 UNSUPPORTED   4 REVOKED
  64 usage error   65 bad data   69 unavailable   70 internal   74 I/O error

Configuration is read from --config FILE, else $VOUCH_CONFIG, else
/etc/vouch/agent.yaml when present; flags and VOUCH_* variables override it.`;

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function run(argv: readonly string[], io: Io): Promise<ExitCode> {
  let exitCode: ExitCode = ExitCode.OK;
  function act<A extends unknown[]>(load: () => Promise<Action<A>>) {
    // The build's run that makes the V8 code cache (launcher.ts) loads every action, so
    // that the cache holds their modules' code, compiled, as well as the definitions'.
    if (io.env.VOUCH_MAKE_CODE_CACHE) void load();
    return async (...args: [...A, Command]): Promise<void> => {
      const command = args.at(-1) as Command;
      const ctx = await contextFor(command, io);
      const action = await load();
      const report = await action(ctx, ...(args.slice(0, -1) as A));
      printReport(report, ctx.output, io);
      exitCode = report.exitCode;
    };
  }
  const program = createProgram(act, io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    const output = outputFormat(program, argv);
    if (error instanceof CommanderError) {
      // --help and --version end parsing with exit code 0; anything else is a usage error.
      if (error.exitCode === 0) return ExitCode.OK;
      // No command given: commander has already printed the help to stderr.
      if (error.code === 'commander.help') return ExitCode.USAGE;
      const message = error.message.replace(/^error: /, '');
      return printError(new VouchError('USAGE', message), output, io);
    }
    return printError(error, output, io);
  }
}

export function createProgram(act: Act, io: Io): Command {
  const program = new Command('vouch')
    .description(
      'Content trust for Home Assistant OS and ARM devices: verify images and files on the ' +
        'device against a locally synced, verified snapshot of a public transparency log.',
    )
    .version(version, '-V, --version', 'print the version')
    // Program options only before the command, so that a command may have options of
    // the same name (`root init --version`); the common options are on every command too.
    .enablePositionalOptions()
    .addHelpText(
      'after',
      examples(
        'vouch sync --root root.json --mirror https://example.org/log/',
        'vouch verify file haos_rpi5-64-16.0.img.xz',
        'vouch verify image ghcr.io/home-assistant/home-assistant:2025.6.0',
      ),
    )
    .addHelpText('after', exitCodeHelp)
    .showSuggestionAfterError()
    .exitOverride()
    .configureHelp(helpConfiguration)
    .addHelpOption(commonOption(new Option('-h, --help', 'display help for command')))
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      // Errors are printed by run() so that --output json gets them as JSON.
      outputError: () => {},
      ...helpWidths(io),
    });
  for (const command of [
    configCommand(act),
    keygenCommand(act),
    ...signCommands(act),
    envelopeCommand(act),
    rootCommand(act),
    logCommand(act),
    hwCommand(act),
    syncCommand(act),
    statusCommand(act),
    snapshotCommand(act),
    stateCommand(act),
    forkCommand(act),
    verifyCommand(act),
    authenticateCommand(act),
    watchCommand(act),
    allowCommand(act),
    agentCommand(act),
  ]) {
    program.addCommand(inheritSettings(program, command));
  }
  return refuseRepeatedOptions(addCommonOptions(program));
}

/**
 * Subcommands at every depth exit through run() and write to its Io, like the program,
 * and every command that runs takes the common options.
 */
function inheritSettings(parent: Command, command: Command): Command {
  command.copyInheritedSettings(parent);
  for (const sub of command.commands) inheritSettings(command, sub);
  if (command.commands.length === 0 || runsItself.has(command)) {
    refuseRepeatedOptions(addCommonOptions(command));
  }
  return command;
}

/**
 * A single-value option given twice is a usage error: commander would keep the last value
 * and drop the first without a word (`sign --out a --out b`). Options meant to repeat take
 * the `repeatable` parser or are variadic. A common option counts once across the program
 * and the command (`vouch -o json verify … -o text`).
 */
function refuseRepeatedOptions(command: Command): Command {
  for (const option of command.options) {
    const single = (option.required || option.optional) && !option.variadic;
    if (!single || option.parseArg === repeatable) continue;
    const name = option.attributeName();
    // Prepended: runs before commander stores this value, so a 'cli' source is an earlier one.
    (command as unknown as EventEmitter).prependListener(`option:${option.name()}`, () => {
      for (let at: Command | null = command; at; at = at.parent) {
        if (at.options.some((known) => known.long === option.long)) {
          if (at.getOptionValueSource(name) === 'cli') {
            command.error(`${option.long} was given more than once; it takes one value`, {
              code: 'vouch.repeatedOption',
              exitCode: ExitCode.USAGE,
            });
          }
        }
      }
    });
  }
  return command;
}

/**
 * `--output`, `--config`, `--state-dir`, `--log-level`: see GlobalOptions in context.ts.
 * Their defaults come from the configuration (context.ts), so the options have none of
 * their own: the help only names them.
 */
function addCommonOptions(command: Command): Command {
  return command
    .addOption(
      commonOption(new Option('-o, --output <format>', 'output format'))
        .choices(['text', 'json'])
        .default(undefined, 'text'),
    )
    .addOption(
      commonOption(
        new Option('-c, --config <file>', 'configuration file (YAML)').default(
          undefined,
          '$VOUCH_CONFIG, else /etc/vouch/agent.yaml',
        ),
      ),
    )
    .addOption(
      commonOption(
        new Option('--state-dir <dir>', 'device state directory').default(
          undefined,
          'stateDir of the configuration, /var/lib/vouch',
        ),
      ),
    )
    .addOption(
      commonOption(new Option('--log-level <level>', 'log level'))
        .choices(logLevels)
        .default(undefined, 'info'),
    );
}

/** Listed apart from a command's own options, under one heading on every command. */
function commonOption(option: Option): Option {
  return option.helpGroup('Common options:');
}

/** The output format, even when parsing failed before options were stored. */
function outputFormat(program: Command, argv: readonly string[]): OutputFormat {
  if (program.opts().output === 'json') return 'json';
  const at = argv.findIndex((arg) => arg === '--output' || arg === '-o');
  return argv[at + 1] === 'json' || argv.includes('--output=json') ? 'json' : 'text';
}
