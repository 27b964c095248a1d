import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { VouchError } from './core/errors';

/**
 * The agent's configuration: one schema, its defaults and units in one place.
 * Sources, later ones winning: built-in defaults → YAML file → environment → flags.
 * Unknown keys are rejected so that a typo does not silently fall back to a default.
 */
export const configSchema = z.strictObject({
  /** Where the device keeps its verified trust state. HA OS: /mnt/data/vouch. */
  stateDir: z.string().min(1).default('/var/lib/vouch'),
  /** pino level for the agent's own log lines (stderr). */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof configSchema>;
/** Values given on the command line or in the environment; unset ones leave the file's value. */
export type ConfigOverrides = { readonly [K in keyof Config]?: Config[K] | undefined };

export const systemConfigPath = '/etc/vouch/agent.yaml';
/** A config file is a few KiB; anything far larger is a mistake, not a config. */
const maxConfigBytes = 1024 * 1024;

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
    const bytes = readFileSync(path);
    if (bytes.length > maxConfigBytes) {
      throw new VouchError('CONFIG_INVALID', `${path}: larger than ${maxConfigBytes} bytes`);
    }
    text = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof VouchError) throw error;
    throw new VouchError('IO', `cannot read config ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new VouchError('CONFIG_INVALID', `${path}: not valid YAML: ${(error as Error).message}`, {
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
