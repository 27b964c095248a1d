import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeSurrogateEscape,
  encodeSurrogateEscape,
  hasEscapedBytes,
} from '../../agent/core/surrogate-escape';

const bytes = (...values: number[]) => Uint8Array.from(values);

describe('surrogateescape (PEP 383)', () => {
  it('decodes valid UTF-8 as usual, with nothing escaped', () => {
    for (const text of ['', 'plain.txt', 'café', '日本語', '🦊 fox', '\0\r\n\x7f']) {
      const decoded = decodeSurrogateEscape(Buffer.from(text, 'utf8'));
      expect(decoded).toBe(text);
      expect(hasEscapedBytes(decoded)).toBe(false);
    }
  });

  it('carries each byte of an ill-formed sequence as U+DC00 + byte (Python’s vectors)', () => {
    for (const [input, expected] of [
      [bytes(0x63, 0x61, 0x66, 0xe9), 'caf\udce9'], // Latin-1 é
      [bytes(0xff, 0xfe), '\udcff\udcfe'],
      [bytes(0xc0, 0xaf), '\udcc0\udcaf'], // overlong '/'
      [bytes(0xed, 0xa0, 0x80), '\udced\udca0\udc80'], // an encoded surrogate
      [bytes(0xf4, 0x90, 0x80, 0x80), '\udcf4\udc90\udc80\udc80'], // above U+10FFFF
      [bytes(0xf0, 0x9f, 0xa6), '\udcf0\udc9f\udca6'], // a truncated 🦊
      [bytes(0xe2, 0x82, 0x41), '\udce2\udc82A'], // a sequence cut by ASCII
      [bytes(0xf0, 0x9f, 0xa6, 0x8a, 0x80), '🦊\udc80'], // a pair, then a byte
    ] as const) {
      const decoded = decodeSurrogateEscape(input);
      expect(decoded).toBe(expected);
      expect(hasEscapedBytes(decoded)).toBe(true);
      expect(encodeSurrogateEscape(decoded).equals(Buffer.from(input))).toBe(true);
    }
  });

  it('gives back the very bytes, whatever they are (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        expect(encodeSurrogateEscape(decodeSurrogateEscape(input)).equals(Buffer.from(input))).toBe(
          true,
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes a string without escaped bytes as UTF-8 (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        expect(hasEscapedBytes(text)).toBe(false);
        expect(encodeSurrogateEscape(text).equals(Buffer.from(text, 'utf8'))).toBe(true);
      }),
    );
  });
});
