import { closeSync, existsSync, fstatSync, readFileSync } from 'node:fs';
import { validate as validCron } from 'node-cron';
import { Parser, parseDocument } from 'yaml';
import { z } from 'zod';
import { VouchError } from './core/errors';
import { enforceModes } from './core/images';
import { isMirrorUrl, mirrorUrlRule } from './core/mirror-url';
import { openRegularFileSync } from './files';
import { logLevels } from './log-levels';

export type { EnforceMode } from './core/images';

const durationUnits = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A duration in milliseconds: a number of milliseconds, or a string such as `500ms`,
 * `30s`, `15m`, `6h`, `7d`. The effective configuration shows milliseconds.
 */
export const duration = z.union(
  [
    z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    z
      .string()
      .regex(/^[0-9]{1,9}(ms|s|m|h|d)$/)
      .transform((text) => {
        const [, amount = '', unit = 'ms'] = /^([0-9]+)([a-z]+)$/.exec(text) ?? [];
        return Number(amount) * durationUnits[unit as keyof typeof durationUnits];
      }),
  ],
  { error: 'expected milliseconds or a duration like 500ms, 30s, 15m, 6h or 7d' },
);

/** A file or directory on the device. */
const filePath = z.string().min(1).max(4096);

/** A mirror of the log: a static tlog-tiles directory served over HTTP(S) or on a file system. */
const mirrorUrl = z.string().refine(isMirrorUrl, { message: `expected ${mirrorUrlRule}` });

const enforceMode = z.enum(enforceModes);

/** A loopback address and port: the API's TCP listener never faces the network. */
export const loopbackListen = /^(127\.0\.0\.1|\[::1\]|localhost):([1-9][0-9]{0,4})$/;

/**
 * The agent's configuration: one schema, its defaults, units and descriptions in one place
 * (`vouch config init` writes its starting file from them: config-template.ts).
 * Sources, later ones winning: built-in defaults → YAML file → environment → flags.
 * Unknown keys are rejected so that a typo does not silently fall back to a default.
 */
export const configSchema = z.strictObject({
  stateDir: z
    .string()
    .min(1)
    .default('/var/lib/vouch')
    .describe('Where the device keeps its verified trust state (HA OS: /mnt/data/vouch).'),
  logLevel: z
    .enum(logLevels)
    .default('info')
    .describe(`Level of vouch's own log lines on stderr: ${logLevels.join(', ')}.`),
  root: z
    .string()
    .min(1)
    .optional()
    .meta({
      description:
        'The first trusted root (a signed root file), for a device without trust state; ' +
        '--root wins. Later roots come from the mirrors.',
      examples: ['/etc/vouch/root.json'],
    }),
  mirrors: z
    .array(mirrorUrl)
    .max(64)
    .default([])
    .describe(
      `Log mirrors, each ${mirrorUrlRule}, tried in this order; --mirror replaces the list. ` +
        'Without any, vouch sync uses those of the last vouch sync --mirror that succeeded.',
    ),
  sync: z
    .strictObject({
      schedule: z
        .string()
        .refine((text) => validCron(text), 'not a cron expression')
        .default('0 */6 * * *')
        .describe('node-cron expression for vouch sync --watch and the agent: every 6 hours.'),
      jitter: duration
        .default(durationUnits.m * 15)
        .describe('Random delay before each scheduled sync, at most this: devices spread out.'),
      maxAge: duration
        .default(durationUnits.d * 7)
        .describe('No fresh checkpoint for this long and the state is stale.'),
      timeout: duration
        .default(durationUnits.s * 30)
        .describe('Per request to a mirror, body included.'),
      connectTimeout: duration
        .default(durationUnits.s * 5)
        .describe(
          'To open a connection to a mirror, once its host name is resolved: a host that never answers is given up on after this, not after timeout, and the next mirror tried.',
        ),
      maxBundleBytes: z
        .number()
        .int()
        .min(1024)
        .max(256 * (2 + 65_535))
        .default(256 * (2 + 65_535))
        .describe(
          'Largest entry bundle accepted (bytes); default: the tlog-tiles maximum, 256 entries ' +
            'of 2 + 65535 bytes. Tiles are capped at their exact size, checkpoints at 256 KiB.',
        ),
    })
    .prefault({})
    .describe('Syncing from the log mirrors.'),
  snapshot: z
    .strictObject({
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .max(Number.MAX_SAFE_INTEGER)
        .default(4 * 2 ** 30)
        .describe('Largest snapshot file read or written (bytes): 4 GiB.'),
      inbox: filePath.optional().meta({
        description:
          'The agent imports snapshot files dropped in this directory (air-gapped updates: ' +
          'a USB stick, a network share) and moves each to done/ or rejected/ beside a ' +
          '.reason file. Default: <stateDir>/inbox.',
        examples: ['/media/usb/vouch'],
      }),
    })
    .prefault({})
    .describe("Snapshot files (vouch snapshot export and import, the agent's inbox)."),
  api: z
    .strictObject({
      socket: z
        .string()
        .min(1)
        .max(107) // sun_path: 108 bytes with its NUL
        .default('/run/vouch/api.sock')
        .describe(
          "The agent's local API: HTTP on this Unix socket (mode 0660, its directory made 0750).",
        ),
      listen: z
        .string()
        .regex(loopbackListen, 'expected 127.0.0.1:PORT, [::1]:PORT or localhost:PORT')
        .refine((text) => Number(text.slice(text.lastIndexOf(':') + 1)) <= 65_535, {
          message: 'the port is above 65535',
        })
        .optional()
        .meta({
          description:
            'Also serve the API on this loopback TCP address; requests need the bearer token ' +
            'in tokenFile.',
          examples: ['127.0.0.1:8765'],
        }),
      tokenFile: filePath.optional().meta({
        description: 'A file holding the bearer token that requests over listen must carry.',
        examples: ['/etc/vouch/api.token'],
      }),
      ingress: z
        .strictObject({
          port: z
            .number()
            .int()
            .min(1)
            .max(65_535)
            .meta({ description: "The TCP port (the add-on's ingress_port).", examples: [8099] }),
          host: z
            .union([z.ipv4(), z.ipv6()])
            .default('0.0.0.0')
            .describe("The address to listen on: all of the container's, by default."),
          allow: z
            .array(z.union([z.ipv4(), z.ipv6()]))
            .min(1)
            .max(16)
            .default(['172.30.32.2'])
            .describe(
              "The only peers answered: by default the Supervisor's ingress proxy " +
                '(developers.home-assistant.io, "Ingress").',
            ),
        })
        .optional()
        .meta({
          description:
            "Home Assistant ingress (the add-on's sidebar panel): the status page and the " +
            'read-only GET routes, without a token, to the allowed peers only.',
          examples: [{ port: 8099 }],
        }),
    })
    .prefault({})
    .refine((api) => api.listen === undefined || api.tokenFile !== undefined, {
      message: 'listen needs tokenFile: the TCP port takes only requests with the bearer token',
      path: ['tokenFile'],
    })
    .describe("The agent's local API (vouch agent)."),
  docker: z
    .strictObject({
      socket: filePath.optional().meta({
        description:
          'The Docker Engine API socket. DOCKER_HOST (unix://PATH or tcp://HOST:PORT) wins ' +
          'when set; default /var/run/docker.sock, or /run/docker.sock when only that ' +
          'exists (HA OS).',
        examples: ['/var/run/docker.sock'],
      }),
    })
    .prefault({})
    .describe('The Docker daemon whose images vouch verifies and watches.'),
  images: z
    .strictObject({
      strict: z
        .boolean()
        .default(false)
        .describe('Images no scope matches: a statement is optional (false) or required (true).'),
      enforce: enforceMode
        .default('warn')
        .describe(`Enforcement for images no scope matches: ${enforceModes.join(', ')}.`),
      couldNotCheck: enforceMode
        .default('warn')
        .describe(
          `What an image that could not be checked gets (${enforceModes.join(', ')}); never ` +
            'treated as UNTRUSTED.',
        ),
      scopes: z
        .array(
          z.strictObject({
            /** A glob over the normalized name: `*` within a path segment, `**` across them. */
            match: z.string().min(1).max(1024),
            /** The signer an image this rule matches requires. */
            signer: z.string().min(1).max(256).optional(),
            enforce: enforceMode.default('warn'),
          }),
        )
        .max(1024)
        .default([
          {
            match: 'ghcr.io/home-assistant/**',
            signer: 'notary@home-assistant.io',
            enforce: 'warn',
          },
        ])
        .describe(
          'Image name scopes, the first rule that matches wins: match (a glob over the ' +
            'normalized name: * within a path segment, ** across them), signer (the signer ' +
            `its images need), enforce (${enforceModes.join(', ')}).`,
        ),
    })
    .prefault({})
    .describe('What images need, and what a verdict does to their containers.'),
  mqtt: z
    .strictObject({
      url: z
        .string()
        .regex(/^mqtts?:\/\/[^\s]+$/, 'expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]')
        .optional()
        .meta({
          description:
            'The MQTT broker the agent reports to (Home Assistant discovery and plain topics); ' +
            'none: no MQTT (in a Home Assistant add-on, the Supervisor names the broker).',
          examples: ['mqtts://homeassistant.local:8883'],
        }),
      username: z
        .string()
        .min(1)
        .max(256)
        .optional()
        .meta({ description: 'MQTT user name.', examples: ['vouch'] }),
      passwordFile: filePath.optional().meta({
        description: "A file holding the MQTT user's password.",
        examples: ['/etc/vouch/mqtt.password'],
      }),
      ca: filePath.optional().meta({
        description: 'mqtts://: the CA certificate (PEM) the broker is checked with.',
        examples: ['/etc/vouch/mqtt-ca.pem'],
      }),
      cert: filePath.optional().meta({
        description: 'mqtts://: a client certificate (PEM), with key.',
        examples: ['/etc/vouch/mqtt-client.pem'],
      }),
      key: filePath.optional().meta({
        description: "mqtts://: the client certificate's private key (PEM).",
        examples: ['/etc/vouch/mqtt-client.key'],
      }),
      discoveryPrefix: z
        .string()
        .regex(/^[^#+\s/][^#+\s]*$/, 'expected a topic without wildcards')
        .max(256)
        .default('homeassistant')
        .describe("Home Assistant's discovery prefix."),
      nodeId: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected letters, digits, _ and -')
        .optional()
        .meta({
          description:
            'The device in topics and unique IDs; default: a hash of /etc/machine-id (not the ID itself).',
          examples: ['kitchen-pi'],
        }),
      baseTopic: z
        .string()
        .regex(/^[^#+\s/][^#+\s]*$/, 'expected a topic without wildcards')
        .max(256)
        .default('vouch')
        .describe('Prefix of the plain topics: <baseTopic>/<nodeId>/state, …'),
    })
    .prefault({})
    .refine((mqtt) => (mqtt.cert === undefined) === (mqtt.key === undefined), {
      message: 'cert and key go together',
      path: ['key'],
    })
    .describe('Reporting to an MQTT broker and Home Assistant.'),
});

export type Config = z.infer<typeof configSchema>;
/** The `images` section: name scopes, their signers and enforcement. */
export type ImagePolicy = Config['images'];
/** Values given on the command line or in the environment; unset ones leave the file's value. */
export type ConfigOverrides = { readonly [K in keyof Config]?: Config[K] | undefined };

export const systemConfigPath = '/etc/vouch/agent.yaml';
/** A config file is a few KiB; anything far larger is a mistake, not a config. */
const maxConfigBytes = 1024 * 1024;
/**
 * Collections nested deeper than this are refused before the YAML is composed: `yaml`
 * composes recursively, so a file of a few thousand nested `[` (or indented keys) overflows
 * the stack, and a second such parse in the same process aborts it in V8's regexp compiler
 * (found by test/fuzz/config.test.ts). The settings nest four deep.
 */
const maxConfigDepth = 64;

/** The deepest collection nesting in YAML `text`, read from its CST (`yaml`'s Parser is iterative). */
function yamlDepth(text: string): number {
  let deepest = 0;
  for (const document of new Parser().parse(text)) {
    const stack: [unknown, number][] = [[document, 0]];
    while (stack.length > 0 && deepest <= maxConfigDepth) {
      const [token, depth] = stack.pop() as [unknown, number];
      if (token === null || typeof token !== 'object') continue;
      deepest = Math.max(deepest, depth);
      const { items, key, value } = token as { items?: unknown; key?: unknown; value?: unknown };
      if (Array.isArray(items)) {
        for (const item of items as { key?: unknown; value?: unknown }[]) {
          stack.push([item.key, depth + 1], [item.value, depth + 1]);
        }
      }
      stack.push([key, depth], [value, depth]);
    }
  }
  return deepest;
}

/** Which file to read: `--config`, else `VOUCH_CONFIG`, else the system file when present. */
export function resolveConfigPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  systemPath = systemConfigPath,
): string | undefined {
  if (flag) return flag;
  if (env.VOUCH_CONFIG) return env.VOUCH_CONFIG;
  return existsSync(systemPath) ? systemPath : undefined;
}

/** Overrides taken from the environment (`VOUCH_STATE_DIR`, `VOUCH_LOG_LEVEL`). */
export function envOverrides(env: NodeJS.ProcessEnv): ConfigOverrides {
  return { stateDir: env.VOUCH_STATE_DIR, logLevel: env.VOUCH_LOG_LEVEL as Config['logLevel'] };
}

export function loadConfig(path: string | undefined, ...overrides: ConfigOverrides[]): Config {
  const fromFile = path === undefined ? {} : readConfigFile(path);
  const merged = { ...fromFile };
  for (const layer of overrides) {
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) merged[key] = value;
    }
  }
  return parseConfig(merged, path ?? 'configuration');
}

export function parseConfig(value: unknown, source: string): Config {
  const result = configSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    return `${path}: ${issue.message}`;
  });
  throw new VouchError('CONFIG_INVALID', `${source}: ${problems.join('; ')}`, {
    cause: result.error,
  });
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    // A regular file only: a FIFO would block, a device never end (files.ts).
    const fd = openRegularFileSync(path, 'config');
    if (fd === undefined)
      throw new VouchError('IO', `cannot read config ${path}: it does not exist`);
    const tooLarge = () =>
      new VouchError('CONFIG_INVALID', `${path}: larger than ${maxConfigBytes} bytes`);
    let bytes: Buffer;
    try {
      // The size before the read, so that a large file is refused unread; after it too, as
      // the file may have grown in between.
      if (fstatSync(fd).size > maxConfigBytes) throw tooLarge();
      bytes = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
    if (bytes.length > maxConfigBytes) throw tooLarge();
    text = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof VouchError) throw error;
    throw new VouchError('IO', `cannot read config ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let document: unknown;
  try {
    if (yamlDepth(text) > maxConfigDepth) {
      throw new VouchError(
        'CONFIG_INVALID',
        `${path}: nested deeper than ${maxConfigDepth} levels`,
      );
    }
    const parsed = parseDocument(text);
    // yaml takes some mistakes for warnings (an unknown tag read as a plain string, a %YAML
    // version it does not know) and would print them on stderr itself: here they are
    // errors, as the file would not mean what its writer meant.
    const problem = parsed.errors[0] ?? parsed.warnings[0];
    if (problem) throw problem;
    document = parsed.toJS();
  } catch (error) {
    if (error instanceof VouchError) throw error;
    // yaml's message is a line naming the place ("… at line 1, column 11:") and then that
    // line quoted under a caret: the first line is the error of one line we print.
    const [what = ''] = (error as Error).message.split('\n');
    throw new VouchError('CONFIG_INVALID', `${path}: not valid YAML: ${what.replace(/:$/, '')}`, {
      cause: error,
    });
  }
  // An empty file means "all defaults".
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new VouchError('CONFIG_INVALID', `${path}: (top level): expected a mapping of settings`);
  }
  return document as Record<string, unknown>;
}
