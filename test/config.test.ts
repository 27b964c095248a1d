import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envOverrides, loadConfig, parseConfig, resolveConfigPath } from '../agent/config';
import { VouchError } from '../agent/core/errors';

const dir = mkdtempSync(join(tmpdir(), 'vouch-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function failure(fn: () => unknown): VouchError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VouchError);
    return error as VouchError;
  }
  throw new Error('expected a VouchError');
}

describe('configuration', () => {
  it('has documented defaults', () => {
    expect(loadConfig(undefined)).toEqual({ stateDir: '/var/lib/vouch', logLevel: 'info' });
  });

  it('layers file, environment and flags, later winning, unset values ignored', () => {
    const path = file('layers.yaml', 'stateDir: /from/file\nlogLevel: warn\n');
    expect(loadConfig(path)).toEqual({ stateDir: '/from/file', logLevel: 'warn' });
    const env = envOverrides({ VOUCH_STATE_DIR: '/from/env' });
    expect(loadConfig(path, env)).toEqual({ stateDir: '/from/env', logLevel: 'warn' });
    expect(loadConfig(path, env, { stateDir: '/from/flag', logLevel: undefined })).toEqual({
      stateDir: '/from/flag',
      logLevel: 'warn',
    });
  });

  it('treats an empty file as all defaults', () => {
    expect(loadConfig(file('empty.yaml', ''))).toEqual(loadConfig(undefined));
  });

  it('names the path of every invalid setting', () => {
    const path = file('bad.yaml', 'stateDir: 5\nlogLevel: loud\nstateDri: /typo\n');
    const error = failure(() => loadConfig(path));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(`${path}: `);
    expect(error.message).toMatch(/stateDir: .*expected string/);
    expect(error.message).toMatch(/logLevel: /);
    expect(error.message).toMatch(/Unrecognized key: "stateDri"/);
  });

  it('rejects YAML that is not a mapping, and broken YAML', () => {
    expect(failure(() => loadConfig(file('list.yaml', '- a\n- b\n'))).code).toBe('CONFIG_INVALID');
    expect(failure(() => loadConfig(file('broken.yaml', 'a: [1\n'))).code).toBe('CONFIG_INVALID');
    expect(failure(() => parseConfig({ stateDir: '' }, 'flags')).message).toMatch(
      /^flags: stateDir/,
    );
  });

  it('reports a missing file as an I/O error', () => {
    expect(failure(() => loadConfig(join(dir, 'missing.yaml'))).code).toBe('IO');
  });

  it('finds the file from the flag, then VOUCH_CONFIG, then the system path when present', () => {
    const system = file('agent.yaml', '');
    expect(resolveConfigPath('/flag.yaml', { VOUCH_CONFIG: '/env.yaml' }, system)).toBe(
      '/flag.yaml',
    );
    expect(resolveConfigPath(undefined, { VOUCH_CONFIG: '/env.yaml' }, system)).toBe('/env.yaml');
    expect(resolveConfigPath(undefined, {}, system)).toBe(system);
    expect(resolveConfigPath(undefined, {}, join(dir, 'absent.yaml'))).toBeUndefined();
  });
});
