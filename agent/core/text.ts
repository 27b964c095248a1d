/**
 * Text output (the CLI's lines and log lines) shows names, paths, reasons and messages that
 * come from input: file names, statements, Docker, mirrors. A terminal acts on some
 * characters instead of showing them: a `\r` in a file name returns to the start of the
 * line, so what follows can overwrite "UNTRUSTED" with "TRUSTED"; `\n` starts a line of its
 * own; ESC starts a control sequence; bidi controls reorder what is shown (CVE-2021-42574,
 * "Trojan Source"). Such characters are shown as escapes instead, and so are bytes that are
 * not UTF-8 (carried as U+DC80–U+DCFF, surrogate-escape.ts): `\xNN`, as a shell's `$'…'`
 * writes them. JSON output keeps every string exact.
 */

/**
 * C0 controls, DEL, C1 controls; the bidi marks and embeddings (ALM, LRM, RLM, LRE–RLO,
 * LRI–PDI); the zero-width characters (ZWSP, ZWNJ, ZWJ, WJ, BOM), which make two names
 * that differ look the same; the line and paragraph separators; a surrogate that is not
 * half of a pair; and the backslash itself, so that an escape shown is always one (a file
 * named `a\rb`, with a backslash, shows as `a\\rb`, not as a file with a CR would).
 */
const unsafe =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
  /[\0-\x1f\x7f-\x9f\\\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const namedEscapes: Readonly<Record<string, string>> = {
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\\': '\\\\',
};

function escapeOne(char: string): string {
  const named = namedEscapes[char];
  if (named !== undefined) return named;
  const code = char.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
  // A byte that is not UTF-8, as the byte.
  if (code >= 0xdc80 && code <= 0xdcff) return `\\x${(code - 0xdc00).toString(16)}`;
  return `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `text` with every character a terminal would act on shown as an escape. */
export function escapeText(text: string): string {
  return text.replace(unsafe, escapeOne);
}

/**
 * A template for a line of text output: each value put into it is escaped (escapeText),
 * the template's own text is kept, so what comes from input cannot start a line or move
 * the cursor. `` safe`${status} ${path}: ${reason}` ``.
 */
export function safe(strings: TemplateStringsArray, ...values: unknown[]): string {
  return strings.reduce((line, literal, i) => line + escapeText(String(values[i - 1])) + literal);
}

/** A document of several lines (JSON, YAML, a signed note) with each line escaped. */
export function escapeLines(text: string): string {
  return text.split('\n').map(escapeText).join('\n');
}
