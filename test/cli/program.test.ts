import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { version } from '../../package.json';
import { runCli } from '../helpers/cli';

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
