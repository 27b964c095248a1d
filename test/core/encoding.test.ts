import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeAnyBase64, decodeBase64, encodeBase64 } from '../../agent/core/encoding';
import { expectVouchError } from '../helpers/errors';

const bytesOf = (text: string) => Array.from(Buffer.from(text));

describe('decodeBase64 (standard, padded, canonical only)', () => {
  it('decodes RFC 4648 §10 test vectors', () => {
    for (const [encoded, plain] of [
      ['', ''],
      ['Zg==', 'f'],
      ['Zm8=', 'fo'],
      ['Zm9v', 'foo'],
      ['Zm9vYg==', 'foob'],
      ['Zm9vYmE=', 'fooba'],
      ['Zm9vYmFy', 'foobar'],
    ] as const) {
      expect(Array.from(decodeBase64(encoded))).toEqual(bytesOf(plain));
    }
  });

  it('rejects every other spelling of the same bytes', () => {
    for (const text of [
      'Zg', // no padding
      'Zh==', // non-zero padding bits (decodes to "f" too)
      'Zm9=', // non-zero padding bits
      'Zm 9v', // whitespace, skipped by Buffer.from
      'Zm9v\n',
      'Zm9v!',
      'Zm9v====',
      'Zg=a',
      '-_8=', // URL-safe alphabet
    ]) {
      expectVouchError(() => decodeBase64(text, 'thing'), 'BAD_DATA');
    }
  });

  it('round-trips any bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(Array.from(decodeBase64(encodeBase64(bytes)))).toEqual(Array.from(bytes));
      }),
    );
  });
});

describe('decodeAnyBase64 (standard or URL-safe)', () => {
  it('takes URL-safe base64 with or without padding, and standard', () => {
    const bytes = [0xfb, 0xff];
    for (const text of ['+/8=', '-_8', '-_8=']) {
      expect(Array.from(decodeAnyBase64(text))).toEqual(bytes);
    }
  });

  it('rejects wrong padding, mixed alphabets and non-canonical bits', () => {
    for (const text of ['-_8==', '+_8=', '-_9', 'Zh', 'Zg=', 'a']) {
      expectVouchError(() => decodeAnyBase64(text), 'BAD_DATA');
    }
  });
});
