import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../agent/config';
import { enforceModes } from '../../agent/core/images';
import { addonConfig, addonIngressPort, readAddonOptions } from '../../agent/device/addon';
import { logLevels } from '../../agent/log-levels';
import { version } from '../../package.json';
import { cliBundle } from '../helpers/device';
import { describeWith } from '../helpers/services';
import {
  appConfigProblems,
  optionsProblems,
  schemaDepth,
  translationProblems,
} from './supervisor-rules';

/**
 * The Home Assistant add-on, os-image/addon/: its files checked against the rules the
 * Supervisor applies (supervisor-rules.ts), and its entrypoint run.sh run for real, outside
 * a container, with the container's paths under a temp directory (VOUCH_ADDON_PREFIX).
 */

const addonDir = 'os-image/addon';
const read = (name: string) => readFile(join(addonDir, name), 'utf8');

let config: Record<string, unknown>;
let schema: Record<string, unknown>;
let options: Record<string, unknown>;
beforeAll(async () => {
  config = parseYaml(await read('config.yaml'));
  schema = config.schema as typeof schema;
  options = config.options as typeof options;
});

describe('the add-on against the Supervisor rules', () => {
  it('config.yaml: every key known and valid, no deprecated value', () => {
    expect(appConfigProblems(config)).toEqual([]);
  });

  it('config.yaml: a key the Supervisor does not know, a bad slug or a 32-bit arch are found', () => {
    // The checks can fail: each of these is a problem the real file must not have.
    expect(appConfigProblems({ ...config, ingres: true })).toEqual([
      'ingres: not a key of the app config (the Supervisor drops it)',
    ]);
    expect(appConfigProblems({ ...config, slug: 'vou ch' })).toHaveLength(1);
    expect(appConfigProblems({ ...config, arch: ['armv7'] })).toEqual([
      "arch: deprecated 'arch' value: armv7",
    ]);
    expect(appConfigProblems({ ...config, services: ['mqtt:use'] })).toHaveLength(1);
    expect(appConfigProblems({ ...config, hassio_role: 'root' })).toHaveLength(1);
    expect(appConfigProblems({ ...config, ingress_port: 70000 })).toHaveLength(1);
    expect(appConfigProblems({ ...config, map: [{ type: 'addon_config' }] })).toEqual([
      "map: legacy map type 'addon_config'",
    ]);
    expect(appConfigProblems({ ...config, schema: { x: 'string' } })).toHaveLength(1);
  });

  it('config.yaml: what this add-on is, and the APIs it needs and no more', () => {
    expect(config).toMatchObject({
      slug: 'vouch',
      version,
      arch: ['aarch64', 'amd64'],
      services: ['mqtt:want'],
      docker_api: true,
      hassio_api: true,
      hassio_role: 'manager',
      ingress: true,
      ingress_port: addonIngressPort,
      map: [{ type: 'app_config', read_only: false }],
    });
    // Role manager: the least that may stop an add-on or Core (api/middleware/security.py
    // ADDONS_ROLE_ACCESS); the MQTT broker comes from /services, which needs none.
    for (const key of [
      'homeassistant_api',
      'host_network',
      'host_pid',
      'full_access',
      'privileged',
    ]) {
      expect(config, key).not.toHaveProperty(key);
    }
  });

  it('options: valid against the schema, one default per option, nested at most two deep', () => {
    expect(optionsProblems(schema, options)).toEqual([]);
    expect(Object.keys(options).sort()).toEqual(Object.keys(schema).sort());
    for (const [key, type] of Object.entries(schema)) {
      expect(schemaDepth(type), key).toBeLessThanOrEqual(2);
    }
    expect(optionsProblems(schema, { ...options, enforcement: 'maybe' })).toEqual([
      "option 'enforcement': expected one of warn, enforce, off",
    ]);
    expect(optionsProblems(schema, { ...options, mirrors: ['ftp://example.org/'] })).toEqual([
      "option 'mirrors': does not match",
    ]);
    expect(optionsProblems(schema, { ...options, scopes: [{ signer: 'x' }] })).toEqual([
      "Missing option 'match' in scopes",
    ]);
    const { log_level: _, ...without } = options;
    expect(optionsProblems(schema, without)).toEqual(["Missing option 'log_level' in root"]);
  });

  it("options: the lists are the agent's own values", () => {
    const values = (type: unknown) => /^list\((.+)\)$/.exec(String(type))?.[1]?.split('|').sort();
    expect(values(schema.enforcement)).toEqual([...enforceModes].sort());
    expect(values(schema.log_level)).toEqual([...logLevels].sort());
  });

  it('translations/en.yaml names and describes every option and field, and nothing else', async () => {
    const translations = parseYaml(await read('translations/en.yaml'));
    expect(Object.keys(translations)).toEqual(['configuration']);
    expect(translationProblems(schema, translations.configuration)).toEqual([]);
    const { scopes: _, ...missing } = translations.configuration;
    expect(translationProblems(schema, missing)).toEqual(['configuration.scopes: no name']);
  });

  it('Dockerfile: FROM the base image by name, no BUILD_FROM, Node from Alpine, run.sh as the entrypoint', async () => {
    const dockerfile = await read('Dockerfile');
    const instructions = dockerfile
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    expect(instructions[0]).toBe('FROM ghcr.io/home-assistant/base:latest');
    expect(instructions.filter((line) => line.startsWith('FROM'))).toHaveLength(1);
    // Neither declared nor used: nothing passes it any more (a comment may say so).
    expect(instructions.join('\n')).not.toContain('BUILD_FROM');
    expect(instructions).toContain('RUN apk add --no-cache nodejs');
    expect(instructions).toContain('COPY dist/ /opt/vouch/');
    expect(instructions).toContain('COPY run.sh /run.sh');
    expect(instructions.at(-1)).toBe('ENTRYPOINT ["/run.sh"]');
    // The base image's s6-overlay /init is replaced, so Docker's init must stay on
    // (config.yaml `init`, default true) to forward SIGTERM and reap.
    expect(config.init).not.toBe(false);
    expect(statSync(join(addonDir, 'run.sh')).mode & 0o111).toBe(0o111);
  });
});

describe('the options as the agent takes them (agent/device/addon.ts)', () => {
  /** config.yaml's default options. */
  const defaults = () => options as Parameters<typeof addonConfig>[0];

  it('the default options make the configuration the agent would use without them', () => {
    const made = parseConfig(addonConfig(defaults()), 'add-on');
    const plain = parseConfig({}, 'defaults');
    expect(made.images).toEqual(plain.images);
    expect(made.sync).toEqual(plain.sync);
    expect(made.logLevel).toBe(plain.logLevel);
    expect(made.mqtt).toEqual(plain.mqtt);
    expect(made).toMatchObject({
      stateDir: '/data/state',
      root: '/config/root.json',
      snapshot: { inbox: '/config/inbox' },
      api: { socket: '/run/vouch/api.sock', ingress: { port: addonIngressPort } },
      docker: { socket: '/run/docker.sock' },
    });
  });

  it('enforcement applies to every scope and to the images no scope matches', () => {
    const made = addonConfig({
      ...defaults(),
      enforcement: 'enforce',
      scopes: [
        { match: 'ghcr.io/example/**' },
        { match: 'docker.io/**', signer: 'me@example.org' },
      ],
    });
    expect(made.images).toEqual({
      enforce: 'enforce',
      scopes: [
        { match: 'ghcr.io/example/**', enforce: 'enforce' },
        { match: 'docker.io/**', signer: 'me@example.org', enforce: 'enforce' },
      ],
    });
  });

  it('reads the default options as the Supervisor writes them', async () => {
    const prefix = await mkdtemp(join(tmpdir(), 'vouch-addon-options-'));
    try {
      await mkdir(join(prefix, 'data'));
      await writeFile(join(prefix, 'data/options.json'), JSON.stringify(options));
      // Strict, every option required: the file and config.yaml have the same keys.
      expect(await readAddonOptions(prefix)).toEqual(options);
    } finally {
      await rm(prefix, { recursive: true, force: true });
    }
  });
});

describe('run.sh with bad options: a clear error and exit 64, /data as it was', () => {
  let bin: string;
  beforeAll(async () => {
    bin = await mkdtemp(join(tmpdir(), 'vouch-addon-bin-'));
    await symlink(cliBundle, join(bin, 'vouch'));
  });
  afterAll(async () => {
    await rm(bin, { recursive: true, force: true });
  });

  it.each([
    ['not JSON', '{"mirrors": [', /options\.json is not valid JSON/],
    ['an unknown value', { enforcement: 'maybe' }, /options\.json: enforcement: Invalid option/],
    ['a bad schedule', { sync_schedule: 'daily' }, /options\.json: sync_schedule: not a cron/],
    [
      'a bad mirror',
      { mirrors: ['ftp://example.org/'] },
      /options\.json: mirrors\.0: expected an http:\/\/, https:\/\/ or file:\/\/ URL/,
    ],
    [
      'an unknown option',
      { colour: 'red' },
      /options\.json: \(top level\): Unrecognized key: "colour"/,
    ],
    ['no options.json', undefined, /add-on options \S+options\.json does not exist/],
  ])('%s', async (_what, given, message) => {
    const prefix = await mkdtemp(join(tmpdir(), 'vouch-addon-bad-'));
    try {
      await mkdir(join(prefix, 'data/state'), { recursive: true });
      const before = { agent: 'logLevel: debug\n', state: 'kept' };
      await writeFile(join(prefix, 'data/agent.yaml'), before.agent);
      await writeFile(join(prefix, 'data/state/marker'), before.state);
      if (given !== undefined) {
        const text = typeof given === 'string' ? given : JSON.stringify({ ...options, ...given });
        await writeFile(join(prefix, 'data/options.json'), text);
      }
      const { code, stderr } = await runScript(prefix, bin);
      expect(code).toBe(64);
      expect(stderr).toMatch(message);
      expect(await readFile(join(prefix, 'data/agent.yaml'), 'utf8')).toBe(before.agent);
      expect(await readFile(join(prefix, 'data/state/marker'), 'utf8')).toBe(before.state);
    } finally {
      await rm(prefix, { recursive: true, force: true });
    }
  });
});

describeWith(
  'mqtt',
  'run.sh as the Supervisor starts it, in a network namespace of its own',
  () => {
    it('the agent starts to ready, reports to the broker the Supervisor names, and serves the status page to the ingress proxy alone', async () => {
      const report = await runScenario();
      expect(report.stdout).toBe(`wrote ${report.prefix}/data/agent.yaml\n`);
      expect(report.agentYaml).toMatchObject({
        stateDir: `${report.prefix}/data/state`,
        api: { ingress: { port: addonIngressPort } },
      });
      expect(report.agentYaml).not.toHaveProperty('mqtt');
      // The broker came from the Supervisor, asked with the add-on's token.
      expect(report.asked).toEqual([{ path: '/services/mqtt', authorized: true }]);
      expect(report.discovery.topic).toMatch(/^homeassistant\/device\/[0-9a-f]{16}\/config$/);
      expect(JSON.parse(report.discovery.payload).dev).toMatchObject({ name: 'vouch' });
      // Synced from the mirror in the options, with the root from /config.
      expect(report.status).toMatchObject({ stale: false, services: { sync: { state: 'ok' } } });
      const { page, status, sync, fromElsewhere } = report.ingress;
      expect(page).toMatchObject({ status: 200 });
      expect(page.type).toMatch(/^text\/html/);
      expect(page.body).toContain('<html');
      expect(status).toMatchObject({ status: 200 });
      expect(JSON.parse(status.body ?? '')).toMatchObject({ origin: report.status.origin });
      // Read-only, and for the proxy alone (docs/agent.md "Local API").
      expect(sync.status).toBe(405);
      expect(fromElsewhere.status).toBe(403);
      expect(report.exit).toEqual({ code: 0, signal: null });
    }, 90_000);
  },
);

interface ScenarioReport {
  readonly prefix: string;
  readonly stdout: string;
  readonly asked: { path: string; authorized: boolean }[];
  readonly discovery: { topic: string; payload: string };
  readonly status: Record<string, unknown>;
  readonly ingress: Record<
    'page' | 'status' | 'sync' | 'fromElsewhere',
    { status?: number; type?: string; body?: string; error?: string }
  >;
  readonly agentYaml: unknown;
  readonly exit: { code: number | null; signal: string | null };
}

/**
 * addon-scenario.ts in a new network namespace (unshare, as root) whose loopback also has
 * 172.30.32.2, the address the Supervisor's ingress proxy connects from; port 8099 is
 * free there whatever runs on this machine.
 */
async function runScenario(): Promise<ScenarioReport> {
  const setup = 'ip link set lo up && ip addr add 172.30.32.2/32 dev lo && exec "$@"';
  const child = spawn(
    'unshare',
    [
      '--net',
      'sh',
      '-c',
      setup,
      'sh',
      process.execPath,
      '--import',
      'tsx',
      'test/os-image/addon-scenario.ts',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the scenario failed (${code}):\n${stderr}`);
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
}

/** run.sh with the container's paths under `prefix` and `vouch` from `bin`. */
async function runScript(prefix: string, bin: string) {
  const child = spawn(join(addonDir, 'run.sh'), [], {
    env: { PATH: `${bin}:${process.env.PATH}`, VOUCH_ADDON_PREFIX: prefix },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 30_000,
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stderr };
}
