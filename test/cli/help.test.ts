import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { type Act, createProgram, run } from '../../agent/cli/program';

const exec = promisify(execFile);

/** A program whose actions only record which command ran: parsing without running. */
function parsingProgram(ran: Command[] = []): Command {
  const act = (() =>
    async (...args: unknown[]) => {
      ran.push(args.at(-1) as Command);
    }) as Act;
  return createProgram(act, { stdout: () => {}, stderr: () => {}, env: {} });
}

/** Every command, the program first, each with its path (`['root', 'init']`). */
function commandsOf(command: Command, path: string[] = []): [string[], Command][] {
  return [
    [path, command],
    ...command.commands.flatMap((sub) => commandsOf(sub, [...path, sub.name()])),
  ];
}

async function helpOf(path: string[], columns?: number): Promise<string> {
  let stdout = '';
  const exitCode = await run([...path, '--help'], {
    stdout: (text) => {
      stdout += text;
    },
    stderr: () => {},
    env: {},
    stdoutColumns: columns,
  });
  expect(exitCode).toBe(0);
  return stdout;
}

/** The examples of a help text: the commands under "Examples:", continuation lines joined. */
function examplesIn(help: string): string[] {
  const section = /\nExamples:\n((?: {2}.*\n?)+)/.exec(help)?.[1] ?? '';
  return section
    .replace(/ \\\n {4}/g, ' ')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.slice(2));
}

function pathOf(command: Command): string[] {
  return command.parent ? [...pathOf(command.parent), command.name()] : [];
}

/** The path as a user types it: a default subcommand (`config show`) may go unnamed. */
function typedPath(command: Command): string[] {
  if (!command.parent) return [];
  const isDefault =
    (command.parent as unknown as { _defaultCommandName?: string })._defaultCommandName ===
    command.name();
  return [...typedPath(command.parent), ...(isDefault ? [] : [command.name()])];
}

/** Shell words, for the quoting the examples use: '…', "…" and plain words. */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map(
    (match) => match[1] ?? match[2] ?? (match[3] as string),
  );
}

/** An option's description in a help text, its wrapped lines joined. */
function optionHelp(help: string, option: Option): string {
  const lines = help.split('\n');
  const at = lines.findIndex((line) => line.startsWith(`  ${option.flags} `));
  expect(at, `${option.flags} in the help`).toBeGreaterThan(-1);
  let text = lines[at] as string;
  for (const line of lines.slice(at + 1)) {
    if (!/^ {4,}\S/.test(line)) break;
    text += ` ${line.trim()}`;
  }
  return text;
}

const commands = commandsOf(parsingProgram()).map(
  ([path, command]) => [['vouch', ...path].join(' '), path, command] as const,
);

describe('vouch --help', () => {
  it('covers every command', () => {
    // The walk reaches leaves and groups at every depth (a guard for the tests below).
    const names = commands.map(([name]) => name);
    expect(names).toEqual(
      expect.arrayContaining(['vouch', 'vouch root', 'vouch root init', 'vouch verify image']),
    );
    expect(names.length).toBeGreaterThan(30);
  });

  it.each(commands)(
    '%s: 1-3 examples of this command, each parsed by the program',
    async (_name, path, command) => {
      const help = await helpOf(path);
      const examples = examplesIn(help);
      expect(examples.length, help).toBeGreaterThanOrEqual(1);
      expect(examples.length).toBeLessThanOrEqual(3);
      for (const example of examples) {
        expect(example).toMatch(new RegExp(`^${['vouch', ...typedPath(command)].join(' ')}( |$)`));
        // Parsed by the real definitions: options, choices, argument parsers, required options
        // and argument counts; the command it names is the one that would run.
        const ran: Command[] = [];
        const words = shellWords(example).slice(1);
        await expect(
          parsingProgram(ran).parseAsync(words, { from: 'user' }),
          example,
        ).resolves.toBeDefined();
        expect(ran, example).toHaveLength(1);
        const ranPath = pathOf(ran[0] as Command);
        expect(ranPath.slice(0, path.length), example).toEqual(path);
        const typed = typedPath(ran[0] as Command);
        expect(words.slice(0, typed.length), example).toEqual(typed);
      }
    },
  );

  it.each(commands)('%s: fits in 80 columns when not a terminal', async (_name, path) => {
    for (const line of (await helpOf(path)).split('\n')) {
      expect(line.length, line).toBeLessThanOrEqual(80);
    }
  });

  it.each(commands)(
    '%s: marks required options, shows defaults as typed',
    async (_name, path, command) => {
      const help = await helpOf(path);
      expect(help).not.toContain('[object');
      for (const option of command.options) {
        const text = optionHelp(help, option);
        // help.ts appends the notes: `(required; one of: …; default: …)`.
        expect(/\(required[;)]/.test(text), text).toBe(option.mandatory);
        const shown = /default: ([^;)]*)/.exec(text)?.[1];
        if (option.defaultValue !== undefined && !option.isBoolean())
          expect(shown, text).toBeDefined();
        if (shown !== undefined) expect(shown, text).not.toMatch(/[{}"[]/);
      }
    },
  );

  it('wraps to the terminal width when the output is a terminal', async () => {
    const path = ['verify', 'image'];
    const wide = (await helpOf(path, 120)).split('\n');
    expect(Math.max(...wide.map((line) => line.length))).toBeGreaterThan(80);
    expect(Math.max(...wide.map((line) => line.length))).toBeLessThanOrEqual(120);
    // Examples are not wrapped (they must stay runnable as shown); everything above them is.
    const narrow = (await helpOf(path, 70)).split('\nExamples:')[0]?.split('\n') ?? [];
    expect(Math.max(...narrow.map((line) => line.length))).toBeLessThanOrEqual(70);
  });

  it('takes the width from the terminal it runs in', async () => {
    // `script` gives the CLI a pseudo-terminal 120 columns wide: main.ts must pass that on.
    const { stdout } = await exec(
      'script',
      ['-qec', 'stty cols 120; npx tsx agent/cli/main.ts verify image --help', '/dev/null'],
      { timeout: 30_000 },
    );
    const lines = stdout.split(/\r?\n/);
    expect(Math.max(...lines.map((line) => line.length))).toBeGreaterThan(80);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThanOrEqual(120);
  });
});
