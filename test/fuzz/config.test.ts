import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { configSchema, loadConfig } from '../../agent/config';
import { expectVouchError } from '../helpers/errors';
import {
  applyByteEdits,
  applyJsonEdit,
  applyLineEdit,
  byteEdits,
  fuzz,
  jsonEdit,
  lineEdit,
  parses,
} from './fuzz';

/**
 * The YAML configuration (agent/config.ts loadConfig), read from a file as the agent reads
 * /etc/vouch/agent.yaml: mutants of a file with every setting written out, edited as YAML
 * text (lines, bytes, YAML's own constructs: anchors, aliases, tags, merge keys) and as the
 * document it holds.
 */

const document = {
  ...(configSchema.parse({}) as Record<string, unknown>),
  root: '/etc/vouch/root.json',
  mirrors: ['https://mirror.example.org/log/', 'file:///media/usb/log/'],
};
const valid = stringify(document);

/** YAML constructs spliced in as lines. */
const yamlLine = fc.constantFrom(
  'a: &a [1, 2]',
  'b: *a',
  'c: *missing',
  '<<: *a',
  'x: !!binary aGVsbG8=',
  'x: !!js/function "function () {}"',
  'x: !!timestamp 2001-12-14',
  '%YAML 1.1',
  '---',
  '...',
  '? [complex, key]',
  ': value',
  'stateDir: !!int 1',
  `mirrors: [${'['.repeat(5_000)}`,
  '  - deeper',
  '\t- tab',
  'key: "\\ud800"',
);

const mutants: fc.Arbitrary<string> = fc.oneof(
  fc
    .array(
      fc.oneof(
        lineEdit,
        yamlLine.map((line) => ({ kind: 'insert' as const, at: 0, line })),
      ),
      {
        minLength: 1,
        maxLength: 3,
      },
    )
    .chain((edits) =>
      fc
        .nat()
        .map((at) =>
          edits.reduce((text, edit) => applyLineEdit(text, { ...edit, at: edit.at || at }), valid),
        ),
    ),
  byteEdits.map((edits) =>
    Buffer.from(applyByteEdits(Buffer.from(valid), edits)).toString('latin1'),
  ),
  fc.array(jsonEdit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const changed = edits.reduce(applyJsonEdit, document);
    return changed === undefined ? '' : stringify(changed);
  }),
);

describe('fuzz: the configuration file', () => {
  let dir: string;
  let count = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vouch-fuzz-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** `text` (latin1: one byte per character, so byte edits stay bytes) as a config file. */
  const load = (text: string) => {
    const path = join(dir, `config-${count++}.yaml`);
    writeFileSync(path, text, 'latin1');
    return path;
  };

  it('reads the file with every setting', () => {
    expect(loadConfig(load(valid)).mirrors).toEqual(document.mirrors);
  });

  it('reads mutants as a configuration or refuses them with CONFIG_INVALID', () => {
    fuzz(mutants, (text) => {
      const path = load(text);
      parses(() => loadConfig(path), ['CONFIG_INVALID']);
      rmSync(path);
    });
  });

  it('refuses an alias bomb (billion laughs) with CONFIG_INVALID, without expanding it', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 10; i++) {
      const previous = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(',')}]`);
    }
    const path = load(`${levels.join('\n')}\n`);
    expect(expectVouchError(() => loadConfig(path), 'CONFIG_INVALID').message).toMatch(
      /alias|Excessive/i,
    );
  });
});
