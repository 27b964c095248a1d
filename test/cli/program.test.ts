import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Command, InvalidArgumentError, type Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { repeatable } from '../../agent/cli/options';
import { createProgram } from '../../agent/cli/program';
import { version } from '../../package.json';
import { runCli } from '../helpers/cli';

/** A value the option's own parser accepts, so that only the repetition can fail. */
function validValue(option: Option): string {
  if (option.argChoices) return option.argChoices[0] as string;
  for (const candidate of ['1', '2025-01-31', '127.0.0.1:8080', 'x']) {
    try {
      option.parseArg?.(candidate, undefined);
      return candidate;
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
    }
  }
  throw new Error(`no valid value for ${option.flags}`);
}

const dir = mkdtempSync(join(tmpdir(), 'vouch-cli-'));

describe('vouch CLI', () => {
  it('prints its version', async () => {
    expect(await runCli(['--version'])).toEqual({
      exitCode: 0,
      stdout: `${version}\n`,
      stderr: '',
    });
  });

  it('explains commands, options and exit codes in --help', async () => {
    const { exitCode, stdout } = await runCli(['--help']);
    expect(exitCode).toBe(0);
    expect(stdout).toMatch(/^Usage: vouch/);
    expect(stdout).toMatch(/Commands:\n\s+config\s+print the effective configuration/);
    expect(stdout).toContain('--output <format>');
    expect(stdout).toContain('64 usage error');
  });

  it('shows help on stderr and exits 64 without a command', async () => {
    const { exitCode, stdout, stderr } = await runCli([]);
    expect(exitCode).toBe(64);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^Usage: vouch/);
  });

  it('reports usage errors as exit 64, as text or as JSON', async () => {
    const text = await runCli(['frobnicate']);
    expect(text.exitCode).toBe(64);
    expect(text.stderr).toBe("vouch: unknown command 'frobnicate'\n");

    const json = await runCli(['config', '--bogus', '--output', 'json']);
    expect(json.exitCode).toBe(64);
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'USAGE', message: "unknown option '--bogus'" },
    });

    const badChoice = await runCli(['config', '--output', 'xml']);
    expect(badChoice.exitCode).toBe(64);
    expect(badChoice.stderr).toMatch(/--output.*xml.*Allowed choices are text, json/);
  });

  it('refuses any single-value option given twice, on every command (nothing dropped)', async () => {
    const leaves = (command: Command): Command[] =>
      command.commands.length === 0 ? [command] : command.commands.flatMap(leaves);
    const program = createProgram(() => async () => {}, { stdout() {}, stderr() {}, env: {} });
    let checked = 0;
    for (const command of leaves(program)) {
      const path = [];
      for (let at: Command | null = command; at?.parent; at = at.parent) path.unshift(at.name());
      for (const option of command.options) {
        const single = (option.required || option.optional) && !option.variadic;
        if (!single || option.parseArg === repeatable) continue;
        const value = validValue(option);
        const flag = option.long as string;
        const result = await runCli([...path, flag, value, flag, value]);
        expect(result.exitCode, `${path.join(' ')} ${flag}`).toBe(64);
        expect(result.stderr).toBe(`vouch: ${flag} was given more than once; it takes one value\n`);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(60);
    // A common option counts once across the program and the command.
    const json = await runCli(['-o', 'json', 'config', '-o', 'json']);
    expect(json.exitCode).toBe(64);
    expect(JSON.parse(json.stdout).error.message).toBe(
      '--output was given more than once; it takes one value',
    );
    // Before the command too.
    const before = await runCli(['--state-dir', dir, '--state-dir', '/nonexistent', 'status']);
    expect(before.exitCode).toBe(64);
    expect(before.stderr).toBe('vouch: --state-dir was given more than once; it takes one value\n');
    // Options meant to repeat still do.
    const out = join(dir, 'repeat.yaml');
    const mirrors = ['http://a.example/log/', 'http://b.example/log/'];
    const repeated = await runCli([
      'config',
      'init',
      '--out',
      out,
      '--mirror',
      mirrors[0] as string,
      '--mirror',
      mirrors[1] as string,
      '-o',
      'json',
    ]);
    expect(repeated.exitCode, repeated.stderr).toBe(0);
    expect(JSON.parse(repeated.stdout).mirrors).toEqual(mirrors);
  });

  it('takes the common options before or after the command', async () => {
    for (const argv of [
      ['-o', 'json', 'config'],
      ['config', '-o', 'json'],
      ['--output=json', 'config', '--state-dir', '/s'],
    ]) {
      const { exitCode, stdout } = await runCli(argv);
      expect(exitCode).toBe(0);
      expect(JSON.parse(stdout).stateDir).toBe(argv.includes('/s') ? '/s' : '/var/lib/vouch');
    }
  });

  it('prints the effective configuration, flags over env over file', async () => {
    const path = join(dir, 'agent.yaml');
    writeFileSync(path, 'stateDir: /from/file\nlogLevel: error\n');
    const fromEnv = await runCli(['config', '-o', 'json'], { VOUCH_CONFIG: path });
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ stateDir: '/from/file', logLevel: 'error' });

    const layered = await runCli(
      ['config', '--config', path, '--state-dir', '/flag', '-o', 'json'],
      {
        VOUCH_STATE_DIR: '/env',
      },
    );
    expect(layered.exitCode).toBe(0);
    expect(JSON.parse(layered.stdout)).toMatchObject({ stateDir: '/flag', logLevel: 'error' });

    const text = await runCli(['config', '--config', path]);
    expect(text.stdout).toMatch(/^stateDir: \/from\/file\nlogLevel: error\nmirrors: \[\]\nsync:\n/);
  });

  it('maps configuration errors to exit 64 and unreadable files to exit 74, in JSON too', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'logLevel: 3\n');
    const invalid = await runCli(['config', '--config', bad, '--output=json']);
    expect(invalid.exitCode).toBe(64);
    expect(JSON.parse(invalid.stdout).error.code).toBe('CONFIG_INVALID');
    expect(JSON.parse(invalid.stdout).error.message).toContain('logLevel');

    const missing = await runCli(['config', '--config', join(dir, 'none.yaml')]);
    expect(missing.exitCode).toBe(74);
    expect(missing.stderr).toMatch(/^vouch: cannot read config .*none\.yaml/);
  });
});
