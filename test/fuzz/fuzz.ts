import fc from 'fast-check';
import { expect, vi } from 'vitest';
import { type ErrorCode, VouchError } from '../../agent/core/errors';

/**
 * The fuzz suite's shared parts (docs/security.md "Fuzzing"): how many cases, how a failure
 * is replayed, what counts as a pass, and mutators of valid inputs. A parser passes a case
 * when it returns, or throws a VouchError with one of the codes it documents: any other
 * throw (a TypeError, a RangeError, a SyntaxError from JSON.parse) is a finding.
 */

/** Cases per property: `FUZZ_RUNS` (200 in `npm test`, 10,000 in `npm run test:fuzz`). */
export const runs = Number(process.env.FUZZ_RUNS ?? 200);

// A property of 10,000 cases takes minutes on two cores: each test gets time in proportion.
vi.setConfig({ testTimeout: Math.max(60_000, runs * 60) });

/**
 * fast-check's parameters. A failure prints its seed and path; `FUZZ_SEED` and `FUZZ_PATH`
 * replay exactly that case. `timeout` bounds each case of an async property (a reader that
 * waits forever on a stream fails the case instead of hanging the run); a synchronous
 * parser cannot be interrupted, which is why each one is also run at its input cap.
 */
export function params(share = 1, least = 0): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED;
  return {
    // A property whose case is a whole import or a server round trip runs a `share` of them.
    numRuns: Math.max(least, Math.ceil(runs * share)),
    timeout: 20_000,
    ...(seed === undefined ? {} : { seed: Number(seed), path: process.env.FUZZ_PATH }),
  };
}

/** A synchronous property over `arbitrary`, checked with {@link params}. */
export function fuzz<T>(arbitrary: fc.Arbitrary<T>, check: (value: T) => void): void {
  fc.assert(fc.property(arbitrary, check), params());
}

/** An asynchronous property over `arbitrary`, each case bounded by the per-case timeout. */
export function fuzzAsync<T>(
  arbitrary: fc.Arbitrary<T>,
  check: (value: T) => Promise<void>,
): Promise<void> {
  return fc.assert(fc.asyncProperty(arbitrary, check), params());
}

/** What reading and verifying a trust root file may fail with. */
export const rootCodes: readonly ErrorCode[] = [
  'ENVELOPE_INVALID',
  'PAYLOAD_TOO_LARGE',
  'SIGNATURE_DUPLICATE',
  'PAYLOAD_TYPE_UNKNOWN',
  'ROOT_INVALID',
  'ROOT_THRESHOLD',
  'ROOT_PREVIOUS_THRESHOLD',
  'ROOT_ROLLBACK',
  'ROOT_VERSION_SKIP',
  'ROOT_EXPIRED',
];

/** Fails unless `error` is a VouchError with one of `codes`; returns it. */
export function expectTyped(error: unknown, codes: readonly ErrorCode[]): VouchError {
  if (!(error instanceof VouchError)) {
    throw new Error(`not a typed error: ${String(error)}`, { cause: error });
  }
  expect(codes).toContain(error.code);
  return error;
}

/** `run()`'s value, or undefined when it threw a VouchError with one of `codes`. */
export function parses<T>(run: () => T, codes: readonly ErrorCode[]): T | undefined {
  try {
    return run();
  } catch (error) {
    expectTyped(error, codes);
    return undefined;
  }
}

/** {@link parses} for a promise. */
export async function parsesAsync<T>(
  run: () => Promise<T>,
  codes: readonly ErrorCode[],
): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    expectTyped(error, codes);
    return undefined;
  }
}

const text = (value: string) => new Uint8Array(Buffer.from(value, 'utf8'));

/**
 * Byte sequences that reach parsers' edge cases when spliced in: JSON structure, numbers
 * past 2^53 and past a double, escapes of lone surrogates, bytes that are not UTF-8, control
 * and bidi characters, the separators of notes, verifier strings and paths.
 */
const tokens: readonly Uint8Array[] = [
  ...[
    '"',
    '\\',
    '{',
    '}',
    '[',
    ']',
    ',',
    ':',
    'null',
    'true',
    '-1',
    '-0',
    '0',
    '1e309',
    '9007199254740993',
    '18446744073709551616',
    '0.5',
    '\\ud800',
    '\\udfff',
    '\\u0000',
    '\ud83d\ude00',
    '\u202e',
    '\u2014 ',
    '\n',
    '\n\n',
    '\r',
    '\t',
    ' ',
    '+',
    '=',
    '/',
    '.p/',
    'x',
    '__proto__',
  ].map(text),
  new Uint8Array([0xff]),
  new Uint8Array([0xed, 0xa0, 0x80]), // a surrogate encoded as UTF-8 (not valid UTF-8)
  new Uint8Array([0xc0, 0x80]), // an overlong NUL
  new Uint8Array([0]),
];

export type ByteEdit =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'token'; readonly at: number; readonly token: number }
  | {
      readonly kind: 'repeat';
      readonly at: number;
      readonly length: number;
      readonly times: number;
    }
  | { readonly kind: 'nest'; readonly at: number; readonly depth: number; readonly open: string };

/**
 * One edit of a byte string; positions are taken modulo its length. `repeat` copies a slice
 * up to thousands of times and `nest` opens brackets up to 100,000 deep: large inputs up to
 * and past the parsers' caps.
 */
export const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip'), at: fc.nat(), bit: fc.nat(7) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('set'), at: fc.nat(), value: fc.nat(255) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('delete'),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 64 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate'), at: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('token'),
      at: fc.nat(),
      token: fc.nat(tokens.length - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('repeat'),
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 512 }),
      times: fc.oneof(fc.integer({ min: 2, max: 16 }), fc.integer({ min: 1_000, max: 10_000 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('nest'),
      at: fc.nat(),
      depth: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(100_000)),
      open: fc.constantFrom('[', '{"a":', '["'),
    }),
  },
);

export function applyByteEdit(bytes: Uint8Array, edit: ByteEdit): Uint8Array {
  const buffer = Buffer.from(bytes);
  const at = buffer.length === 0 ? 0 : edit.at % (buffer.length + 1);
  const before = buffer.subarray(0, at);
  const after = buffer.subarray(at);
  switch (edit.kind) {
    case 'flip':
    case 'set': {
      if (buffer.length === 0) return buffer;
      const i = edit.at % buffer.length;
      const copy = Buffer.from(buffer);
      copy[i] = edit.kind === 'flip' ? (copy[i] as number) ^ (1 << edit.bit) : edit.value;
      return copy;
    }
    case 'delete':
      return Buffer.concat([before, after.subarray(edit.length)]);
    case 'truncate':
      return before;
    case 'token':
      return Buffer.concat([before, tokens[edit.token] as Uint8Array, after]);
    case 'repeat': {
      const slice = after.subarray(0, edit.length);
      return Buffer.concat([before, ...Array<Buffer>(edit.times).fill(slice), after]);
    }
    case 'nest':
      return Buffer.concat([before, Buffer.from(edit.open.repeat(edit.depth)), after]);
  }
}

/** One to four byte edits. */
export const byteEdits = fc.array(byteEdit, { minLength: 1, maxLength: 4 });

export function applyByteEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  return new Uint8Array(edits.reduce(applyByteEdit, bytes));
}

/** Valid `bytes` mutated by one to four byte edits. */
export function mutatedBytes(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  return byteEdits.map((edits) => applyByteEdits(bytes, edits));
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Values of the wrong type, at the edges of numbers and strings, and deeply nested. */
export const strangeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    0,
    -1,
    -0,
    0.5,
    2 ** 53,
    2 ** 64,
    1e308,
    -1e308,
    '',
    ' ',
    '\ud800',
    '\udfff\ud800',
    '\u0000',
    '\u202e',
    'x'.repeat(100_000),
    [],
    {},
    [[[[[[]]]]]],
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.jsonValue({ maxDepth: 3 }),
);

export type JsonEdit =
  | { readonly kind: 'replace'; readonly path: readonly number[]; readonly value: unknown }
  | { readonly kind: 'delete'; readonly path: readonly number[] }
  | {
      readonly kind: 'add';
      readonly path: readonly number[];
      readonly key: string;
      readonly value: unknown;
    }
  | { readonly kind: 'swap'; readonly path: readonly number[]; readonly other: readonly number[] }
  | { readonly kind: 'wrap'; readonly path: readonly number[] };

const jsonPath = fc.array(fc.nat(), { maxLength: 6 });

/**
 * One edit of a JSON document at a path of child indexes (each taken modulo the number of
 * children, so every path names a node): a value replaced by one of another type, a field
 * deleted or added, two values swapped, a value wrapped in an array.
 */
export const jsonEdit: fc.Arbitrary<JsonEdit> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('replace'), path: jsonPath, value: strangeValue }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete'), path: jsonPath }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('add'),
      path: jsonPath,
      key: fc.oneof(
        fc.string({ maxLength: 8 }),
        fc.constantFrom('__proto__', 'constructor', '_type'),
      ),
      value: strangeValue,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('swap'), path: jsonPath, other: jsonPath }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrap'), path: jsonPath }) },
);

function children(node: Json): [string | number, Json][] {
  if (Array.isArray(node)) return node.map((value, i) => [i, value]);
  if (node !== null && typeof node === 'object') return Object.entries(node);
  return [];
}

/** The container and key of the node `path` leads to (undefined for the document itself). */
function locate(document: Json, path: readonly number[]): [Json, string | number] | undefined {
  let parent: [Json, string | number] | undefined;
  let node = document;
  for (const step of path) {
    const list = children(node);
    if (list.length === 0) break;
    const [key, child] = list[step % list.length] as [string | number, Json];
    parent = [node, key];
    node = child;
  }
  return parent;
}

function get(container: Json, key: string | number): Json {
  return (container as Record<string | number, Json>)[key] as Json;
}

function set(container: Json, key: string | number, value: unknown): void {
  // defineProperty, so that a key like __proto__ becomes a field as JSON.parse makes it.
  Object.defineProperty(container, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** A copy of `document` with `edit` made. */
export function applyJsonEdit(document: unknown, edit: JsonEdit): unknown {
  const copy = structuredClone(document) as Json;
  const at = locate(copy, edit.path);
  switch (edit.kind) {
    case 'replace':
      if (!at) return edit.value;
      set(at[0], at[1], edit.value);
      return copy;
    case 'delete':
      if (!at) return undefined;
      if (Array.isArray(at[0])) at[0].splice(at[1] as number, 1);
      else delete (at[0] as Record<string, Json>)[at[1]];
      return copy;
    case 'add': {
      const target = at ? get(at[0], at[1]) : copy;
      if (Array.isArray(target)) target.push(edit.value as Json);
      else if (target !== null && typeof target === 'object') set(target, edit.key, edit.value);
      return copy;
    }
    case 'swap': {
      const other = locate(copy, edit.other);
      if (!at || !other) return copy;
      const value = get(at[0], at[1]);
      set(at[0], at[1], get(other[0], other[1]));
      set(other[0], other[1], value);
      return copy;
    }
    case 'wrap':
      if (!at) return [copy];
      set(at[0], at[1], [get(at[0], at[1])]);
      return copy;
  }
}

/** `document` changed by one to three JSON edits, then serialized. */
export function mutatedJson(document: unknown): fc.Arbitrary<Uint8Array> {
  return fc.array(jsonEdit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const changed = edits.reduce(applyJsonEdit, document);
    return text(JSON.stringify(changed) ?? '');
  });
}

/**
 * Mutants of a valid JSON document: edits of its structure (so that typed fields get wrong
 * types and deep fields are reached), edits of its bytes, or both.
 */
export function jsonMutants(document: unknown): fc.Arbitrary<Uint8Array> {
  const valid = text(JSON.stringify(document));
  return fc.oneof(
    mutatedJson(document),
    mutatedBytes(valid),
    mutatedJson(document).chain((bytes) => mutatedBytes(bytes)),
  );
}

/** Text with its lines edited: dropped, repeated, swapped, emptied, made huge. */
export type LineEdit =
  | { readonly kind: 'drop' | 'empty' | 'huge'; readonly at: number }
  | { readonly kind: 'repeat'; readonly at: number; readonly times: number }
  | { readonly kind: 'swap'; readonly at: number; readonly other: number }
  | { readonly kind: 'insert'; readonly at: number; readonly line: string };

export const lineEdit: fc.Arbitrary<LineEdit> = fc.oneof(
  fc.record({ kind: fc.constantFrom('drop', 'empty', 'huge'), at: fc.nat() }),
  fc.record({ kind: fc.constant('repeat'), at: fc.nat(), times: fc.integer({ min: 2, max: 200 }) }),
  fc.record({ kind: fc.constant('swap'), at: fc.nat(), other: fc.nat() }),
  fc.record({
    kind: fc.constant('insert'),
    at: fc.nat(),
    line: fc.string({ unit: 'binary', maxLength: 30 }),
  }),
);

export function applyLineEdit(text: string, edit: LineEdit): string {
  const lines = text.split('\n');
  const at = edit.at % lines.length;
  const line = lines[at] as string;
  switch (edit.kind) {
    case 'drop':
      lines.splice(at, 1);
      break;
    case 'empty':
      lines[at] = '';
      break;
    case 'huge':
      lines[at] = line.repeat(Math.ceil(300_000 / (line.length + 1)));
      break;
    case 'repeat':
      lines.splice(at, 1, ...Array<string>(edit.times).fill(line));
      break;
    case 'swap': {
      const other = edit.other % lines.length;
      lines[at] = lines[other] as string;
      lines[other] = line;
      break;
    }
    case 'insert':
      lines.splice(at, 0, edit.line);
      break;
  }
  return lines.join('\n');
}
