import { describe, expect, it } from 'vitest';
import { escapeLines, escapeText, safe } from '../../agent/core/text';

describe('text output escaping', () => {
  it('shows what a terminal would act on as escapes', () => {
    for (const [raw, shown] of [
      ['a\rTRUSTED', 'a\\rTRUSTED'],
      ['two\nlines\tand tab', 'two\\nlines\\tand tab'],
      ['\x1b[2J\x1b]0;title\x07', '\\x1b[2J\\x1b]0;title\\x07'],
      ['\0\x7f', '\\x00\\x7f'],
      ['c1 \x85 \x9b', 'c1 \\u0085 \\u009B'],
      [
        'bidi \u202eevil\u202c \u2066x\u2069 \u200f\u061c',
        'bidi \\u202Eevil\\u202C \\u2066x\\u2069 \\u200F\\u061C',
      ],
      ['line\u2028sep', 'line\\u2028sep'],
      ['caf\udce9', 'caf\\xe9'], // a byte that is not UTF-8 (surrogateescape)
      ['lone \ud800 and \udc00', 'lone \\uD800 and \\uDC00'],
      ['zero\u200bwidth\ufeff\u2060', 'zero\\u200Bwidth\\uFEFF\\u2060'],
      ['back\\slash \\x41', 'back\\\\slash \\\\x41'],
    ] as const) {
      expect(escapeText(raw)).toBe(shown);
    }
  });

  it('leaves printable text alone, any script and astral characters too', () => {
    for (const text of ['plain /path/to/file.img', 'café 日本語 🦊', 'sha256:ab…']) {
      expect(escapeText(text)).toBe(text);
    }
  });

  it('is unambiguous: a name that spells an escape never shows like the character', () => {
    // A file named `a\rTRUSTED` with a backslash, and one with a carriage return.
    expect(escapeText('a\\rTRUSTED')).not.toBe(escapeText('a\rTRUSTED'));
    expect(escapeText('\\xe9')).not.toBe(escapeText('\udce9'));
  });

  it('safe`…` escapes the values put into the template, not the template', () => {
    const path = 'x\rTRUSTED y';
    expect(safe`UNTRUSTED ${path}: ${'bad\nTRUSTED'}\n`).toBe(
      'UNTRUSTED x\\rTRUSTED y: bad\\nTRUSTED\n',
    );
    expect(safe`${1} of ${2}`).toBe('1 of 2');
  });

  it('escapeLines keeps a document’s lines and escapes within them', () => {
    expect(escapeLines('{\n  "id": "a\u202eb"\n}')).toBe('{\n  "id": "a\\u202Eb"\n}');
  });
});
