import { stringify } from 'yaml';
import { z } from 'zod';
import { configSchema, duration } from './config';

/**
 * The starting configuration `vouch config init` writes: every setting of the schema in
 * agent/config.ts, with its description and its default (commented out, so that a later
 * default still applies), and the values given on the command line set. Made from the
 * schema, so a new setting is in it with nothing else to change.
 */

export interface TemplateValues {
  /** Setting name → value, for top-level settings written as set (root, mirrors). */
  readonly [setting: string]: unknown;
}

const width = 88;
const units = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
] as const;

interface Meta {
  readonly description?: string;
  readonly examples?: readonly unknown[];
}

/** The schema under `.default()`, `.prefault()` and `.optional()`. */
function bare(schema: z.ZodType): z.ZodType {
  let inner = schema;
  for (;;) {
    const def = inner._zod.def as { type: string; innerType?: z.ZodType };
    if (!['default', 'prefault', 'optional'].includes(def.type) || !def.innerType) return inner;
    inner = def.innerType;
  }
}

/** The default `.default()` gives, under `.optional()` and the like; undefined without one. */
function defaultOf(schema: z.ZodType): unknown {
  let inner = schema;
  for (;;) {
    const def = inner._zod.def as { type: string; innerType?: z.ZodType; defaultValue?: unknown };
    if (def.type === 'default') return def.defaultValue;
    if (!['prefault', 'optional'].includes(def.type) || !def.innerType) return undefined;
    inner = def.innerType;
  }
}

/** A duration as the largest unit it is a whole number of (`15m`), else milliseconds. */
function formatDuration(ms: number): string | number {
  const unit = units.find(([, size]) => ms > 0 && ms % size === 0);
  return unit ? `${ms / unit[1]}${unit[0]}` : ms;
}

/** `text` in lines of at most `width` columns after `prefix`. */
function wrap(text: string, prefix: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && prefix.length + line.length + 1 + word.length > width) {
      lines.push(prefix + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, prefix + line];
}

/** `key: value` as YAML, each line after `prefix`. */
function setting(key: string, value: unknown, prefix: string): string[] {
  return stringify({ [key]: value })
    .trimEnd()
    .split('\n')
    .map((line) => prefix + line);
}

function settings(
  shape: Readonly<Record<string, z.ZodType>>,
  defaults: Readonly<Record<string, unknown>>,
  given: TemplateValues,
  indent: string,
): string[] {
  const commented = indent !== '';
  const lines: string[] = [];
  for (const [key, field] of Object.entries(shape)) {
    const meta = (field.meta() ?? {}) as Meta;
    const inner = bare(field);
    if (!commented) lines.push('');
    lines.push(...wrap(meta.description ?? key, commented ? `# ${indent}# ` : '# '));
    const value = given[key];
    if (value !== undefined) {
      lines.push(...setting(key, value, ''));
    } else if (inner instanceof z.ZodObject) {
      lines.push(`# ${indent}${key}:`);
      const nested = (defaults[key] ?? {}) as Record<string, unknown>;
      lines.push(...settings(inner.shape, nested, {}, `${indent}  `));
    } else {
      // An optional section has no defaults of its own: its settings' are their schemas'.
      const shown = defaults[key] ?? defaultOf(field) ?? meta.examples?.[0];
      const display = inner === duration ? formatDuration(shown as number) : shown;
      lines.push(...setting(key, display, `# ${indent}`));
    }
  }
  return lines;
}

/** The configuration file's text, for the file at `path`. */
export function configTemplate(path: string, given: TemplateValues): string {
  const header = [
    '# vouch configuration, written by vouch config init.',
    `# Check it with: vouch config --config ${path}`,
    '# A setting left commented out takes the default shown; uncomment it to change it.',
    '# Durations are milliseconds, or a number with a unit: 500ms, 30s, 15m, 6h, 7d.',
  ];
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  return `${[...header, ...settings(configSchema.shape, defaults, given, '')].join('\n')}\n`;
}
