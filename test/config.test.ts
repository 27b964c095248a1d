import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { envOverrides, loadConfig, parseConfig, resolveConfigPath } from '../agent/config';
import { failure } from './helpers/errors';

const dir = mkdtempSync(join(tmpdir(), 'vouch-config-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('configuration', () => {
  it('has documented defaults', () => {
    expect(loadConfig(undefined)).toEqual({
      stateDir: '/var/lib/vouch',
      logLevel: 'info',
      mirrors: [],
      sync: {
        schedule: '0 */6 * * *',
        jitter: 15 * 60_000,
        maxAge: 7 * 86_400_000,
        timeout: 30_000,
        connectTimeout: 5000,
        maxBundleBytes: 256 * (2 + 65_535),
      },
      snapshot: { maxBytes: 4 * 2 ** 30 },
      docker: {},
      api: { socket: '/run/vouch/api.sock' },
      mqtt: { discoveryPrefix: 'homeassistant', baseTopic: 'vouch' },
      images: {
        strict: false,
        enforce: 'warn',
        couldNotCheck: 'warn',
        scopes: [
          {
            match: 'ghcr.io/home-assistant/**',
            signer: 'notary@home-assistant.io',
            enforce: 'warn',
          },
        ],
      },
    });
  });

  it('reads the Docker socket and the image policy; scopes replace the default list', () => {
    const config = parseConfig(
      {
        docker: { socket: '/run/docker.sock' },
        images: {
          strict: true,
          enforce: 'enforce',
          couldNotCheck: 'off',
          scopes: [{ match: 'ghcr.io/acme/*', signer: 'ci@acme.example' }, { match: '**' }],
        },
      },
      'test',
    );
    expect(config.docker.socket).toBe('/run/docker.sock');
    expect(config.images).toEqual({
      strict: true,
      enforce: 'enforce',
      couldNotCheck: 'off',
      scopes: [
        { match: 'ghcr.io/acme/*', signer: 'ci@acme.example', enforce: 'warn' },
        { match: '**', enforce: 'warn' },
      ],
    });
    expect(parseConfig({ images: { scopes: [] } }, 'test').images.scopes).toEqual([]);
    const error = failure(() =>
      parseConfig(
        {
          docker: { socket: '', host: 'tcp://x' },
          images: {
            strict: 'yes',
            couldNotCheck: 'untrusted',
            scopes: [{ match: 'x', enforce: 'block' }, { signer: 'a' }],
          },
        },
        'agent.yaml',
      ),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    for (const path of [
      'docker.socket',
      'docker: Unrecognized key: "host"',
      'images.strict',
      'images.couldNotCheck',
      'images.scopes.0.enforce',
      'images.scopes.1.match',
    ]) {
      expect(error.message).toContain(path);
    }
  });

  it('reads durations in milliseconds or with a unit, cron expressions and mirror URLs', () => {
    const config = parseConfig(
      {
        root: '/etc/vouch/root.json',
        mirrors: ['https://example.org/log/', 'file:///media/usb/log'],
        sync: {
          schedule: '*/5 * * * *',
          jitter: 0,
          maxAge: '2d',
          timeout: '1500ms',
          connectTimeout: '2s',
        },
      },
      'test',
    );
    expect(config.root).toBe('/etc/vouch/root.json');
    expect(config.mirrors).toEqual(['https://example.org/log/', 'file:///media/usb/log']);
    expect(config.sync).toMatchObject({
      schedule: '*/5 * * * *',
      jitter: 0,
      maxAge: 2 * 86_400_000,
      timeout: 1500,
      connectTimeout: 2000,
    });
    const error = failure(() =>
      parseConfig(
        { mirrors: ['ftp://example.org/'], sync: { schedule: 'hourly', maxAge: '1y' } },
        'test',
      ),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/mirrors\.0: expected an http:\/\/, https:\/\/ or file:\/\/ URL/);
    expect(error.message).toMatch(/sync\.schedule: not a cron expression/);
    expect(error.message).toMatch(/sync\.maxAge: expected milliseconds or a duration/);
  });

  it('layers file, environment and flags, later winning, unset values ignored', () => {
    const path = file('layers.yaml', 'stateDir: /from/file\nlogLevel: warn\n');
    expect(loadConfig(path)).toMatchObject({ stateDir: '/from/file', logLevel: 'warn' });
    const env = envOverrides({ VOUCH_STATE_DIR: '/from/env' });
    expect(loadConfig(path, env)).toMatchObject({ stateDir: '/from/env', logLevel: 'warn' });
    expect(loadConfig(path, env, { stateDir: '/from/flag', logLevel: undefined })).toMatchObject({
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
    const broken = file('broken.yaml', 'a: [1\n');
    expect(failure(() => loadConfig(broken))).toMatchObject({
      code: 'CONFIG_INVALID',
      // One line, naming the place: the quoted line and its caret are left out.
      message: expect.stringMatching(
        new RegExp(`^${broken}: not valid YAML: .* at line \\d+, column \\d+$`),
      ),
    });
    expect(failure(() => parseConfig({ stateDir: '' }, 'flags')).message).toMatch(
      /^flags: stateDir/,
    );
  });

  it('takes what yaml would only warn of on stderr for an error: an unknown tag, a %YAML it does not know', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    const tag = file('tag.yaml', 'logLevel: !loud warn\n');
    expect(failure(() => loadConfig(tag))).toMatchObject({
      code: 'CONFIG_INVALID',
      message: `${tag}: not valid YAML: Unresolved tag: !loud at line 1, column 11`,
    });
    const version = file('version.yaml', '%YAML 1.3\n---\nlogLevel: warn\n');
    expect(failure(() => loadConfig(version)).message).toMatch(/Unsupported YAML version 1\.3/);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it('refuses a file over 1 MiB unread: at 1 MiB + 1 byte, and a sparse 3 GiB one', () => {
    const path = file('large.yaml', '');
    for (const size of [2 ** 20 + 1, 3 * 2 ** 30]) {
      truncateSync(path, size);
      expect(failure(() => loadConfig(path))).toMatchObject({
        code: 'CONFIG_INVALID',
        message: `${path}: larger than ${2 ** 20} bytes`,
      });
    }
    truncateSync(path, 2 ** 20);
    expect(failure(() => loadConfig(path)).message).not.toMatch(/larger than/);
  });

  it('refuses YAML nested deeper than 64 levels before composing it, as often as it is read', () => {
    // Found by test/fuzz/config.test.ts: `yaml` composes recursively, and the second parse
    // of such a file in one process aborted it in V8's regexp compiler (no error to catch).
    let indented = '';
    for (let i = 0; i < 1400; i++) indented += `${' '.repeat(i)}k:\n`;
    const deep = [file('flow.yaml', `a: ${'['.repeat(100_000)}`), file('block.yaml', indented)];
    for (const path of [...deep, ...deep]) {
      expect(failure(() => loadConfig(path)).message).toMatch(/nested deeper than 64 levels$/);
    }
    const nested = `scopes: ${'['.repeat(60)}${']'.repeat(60)}\n`;
    expect(failure(() => loadConfig(file('nested.yaml', nested))).message).toMatch(/scopes/);
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

describe('the api section', () => {
  it('takes a loopback listener only with a token file', () => {
    const api = { listen: '127.0.0.1:8765', tokenFile: '/etc/vouch/api.token' };
    expect(parseConfig({ api }, 'test').api).toEqual({ socket: '/run/vouch/api.sock', ...api });
    expect(() => parseConfig({ api: { listen: '127.0.0.1:8765' } }, 'test')).toThrow(
      /api\.tokenFile: listen needs tokenFile/,
    );
    expect(() => parseConfig({ api: { listen: '0.0.0.0:8765', tokenFile: '/t' } }, 'test')).toThrow(
      /api\.listen: expected 127\.0\.0\.1:PORT/,
    );
  });
});
