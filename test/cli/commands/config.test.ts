import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ZodObject, type z } from 'zod';
import { configSchema, loadConfig, parseConfig } from '../../../agent/config';
import { configTemplate } from '../../../agent/config-template';
import { runCli } from '../../helpers/cli';

/** Issue #13 item 9: `vouch config init` writes a commented configuration that validates. */

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vouch-config-init-'));
});

/** Every setting of the schema as a dotted path, with its schema. */
function settings(shape: Readonly<Record<string, z.ZodType>>, prefix = ''): [string, z.ZodType][] {
  return Object.entries(shape).flatMap(([key, field]): [string, z.ZodType][] => {
    // Under .default(), .prefault(), .optional(): a section is an object, a list a setting.
    let inner: z.ZodType = field;
    for (let def = inner._zod.def; 'innerType' in def; def = inner._zod.def) {
      inner = def.innerType as z.ZodType;
    }
    return inner instanceof ZodObject
      ? [[prefix + key, field], ...settings(inner.shape, `${prefix + key}.`)]
      : [[prefix + key, field]];
  });
}

describe('vouch config init', () => {
  it('writes a configuration that vouch config reads: root absolute, mirrors set, defaults', async () => {
    const out = join(dir, 'etc', 'vouch', 'agent.yaml');
    const init = await runCli([
      'config',
      'init',
      '--out',
      out,
      '--root',
      'keys/root.json',
      '--mirror',
      'https://mirror.example/log/',
      '--mirror',
      'file:///media/usb/log',
    ]);
    expect(init.exitCode, init.stderr).toBe(0);
    expect(init.stdout).toContain(`check it with: vouch config --config ${out}`);
    const shown = await runCli(['config', '--config', out, '-o', 'json']);
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual({
      ...loadConfig(undefined),
      root: resolve('keys/root.json'),
      mirrors: ['https://mirror.example/log/', 'file:///media/usb/log'],
    });

    const again = await runCli(['config', 'init', '--out', out, '-o', 'json']);
    expect(again.exitCode).toBe(64);
    expect(JSON.parse(again.stdout).error.code).toBe('FILE_EXISTS');
  });

  it('refuses a mirror that is not a mirror URL, and writes nothing', async () => {
    const out = join(dir, 'bad.yaml');
    const bad = await runCli(['config', 'init', '--out', out, '--mirror', 'ftp://mirror.example/']);
    expect(bad.exitCode).toBe(64);
    expect(bad.stderr).toMatch(/--mirror ftp:\/\/mirror\.example\/: expected an http:\/\//);
    expect(existsSync(out)).toBe(false);
  });

  it('describes every setting of the schema, each with its default, commented out', () => {
    const text = configTemplate('/etc/vouch/agent.yaml', {});
    expect(parseYaml(text)).toBeNull();
    for (const [path, field] of settings(configSchema.shape)) {
      expect(field.meta()?.description, `${path} has a description`).toBeTruthy();
      const key = path.split('.').at(-1) as string;
      const indent = ' '.repeat(2 * (path.split('.').length - 1));
      expect(text, path).toMatch(new RegExp(`^# ${indent}${key}:`, 'm'));
    }
    // Uncommented (top-level `# key:` lines, and whole sections), every setting holds its
    // default, or its example where it has none.
    const uncommented = text
      .split('\n')
      .filter((line) => /^# [A-Za-z]+:( |$)/.test(line) || /^# {2}/.test(line))
      .map((line) => line.slice(2))
      .join('\n');
    expect(parseConfig(parseYaml(uncommented), 'uncommented')).toEqual({
      ...loadConfig(undefined),
      root: '/etc/vouch/root.json',
      docker: { socket: '/var/run/docker.sock' },
      snapshot: { ...loadConfig(undefined).snapshot, inbox: '/media/usb/vouch' },
      api: {
        socket: '/run/vouch/api.sock',
        listen: '127.0.0.1:8765',
        tokenFile: '/etc/vouch/api.token',
        ingress: { port: 8099, host: '0.0.0.0', allow: ['172.30.32.2'] },
      },
      mqtt: {
        url: 'mqtts://homeassistant.local:8883',
        username: 'vouch',
        passwordFile: '/etc/vouch/mqtt.password',
        ca: '/etc/vouch/mqtt-ca.pem',
        cert: '/etc/vouch/mqtt-client.pem',
        key: '/etc/vouch/mqtt-client.key',
        discoveryPrefix: 'homeassistant',
        nodeId: 'kitchen-pi',
        baseTopic: 'vouch',
      },
    });
  });

  it('keeps vouch config as it was: the default, with the common options', async () => {
    const path = join(dir, 'etc', 'vouch', 'agent.yaml');
    const text = await readFile(path, 'utf8');
    expect(text).toMatch(/^# vouch configuration, written by vouch config init/);
    const shown = await runCli(['config', '--state-dir', '/s', '-o', 'json']);
    expect(JSON.parse(shown.stdout).stateDir).toBe('/s');
    const show = await runCli(['config', 'show', '--config', path]);
    expect(show.stdout).toMatch(/^stateDir: \/var\/lib\/vouch\n/);
  });
});
