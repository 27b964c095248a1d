import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Crc64Iso } from '../../agent/core/crc64';

const crc = (bytes: Uint8Array) => new Crc64Iso().update(bytes).digest().toString('hex');

/**
 * An independent reference: bit by bit on a BigInt, straight from the definition (reflected
 * polynomial 0xD800000000000000, i.e. x⁶⁴ + x⁴ + x³ + x + 1; all-ones init and final XOR).
 */
function bitwise(bytes: Uint8Array): string {
  const mask = (1n << 64n) - 1n;
  let state = mask;
  for (const byte of bytes) {
    state ^= BigInt(byte);
    for (let bit = 0; bit < 8; bit++) {
      state = state & 1n ? (state >> 1n) ^ 0xd800000000000000n : state >> 1n;
    }
  }
  return (state ^ mask).toString(16).padStart(16, '0');
}

describe('Crc64Iso (Go hash/crc64 with the ISO table)', () => {
  it('gives the published check value and the checksums Docker recorded', () => {
    for (const [text, hex, source] of [
      // The CRC catalogue's CRC-64/GO-ISO check value.
      ['123456789', 'b90956c775a41001', 'catalogue'],
      ['', '0000000000000000', 'empty'],
      // From tar-split records dockerd 20.10 (Go's hash/crc64) wrote for files in tests:
      // payloads "Mt2MAAAAAAA=" and "MtLNyDhQAAA=".
      ['one', '32dd8c0000000000', 'dockerd'],
      ['three', '32d2cdc838500000', 'dockerd'],
    ] as const) {
      expect(crc(Buffer.from(text)), source).toBe(hex);
      expect(bitwise(Buffer.from(text)), `reference: ${source}`).toBe(hex);
    }
  });

  it('matches the bitwise reference on any bytes, whole or in any split (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (bytes, cut) => {
        const at = bytes.length === 0 ? 0 : cut % (bytes.length + 1);
        const split = new Crc64Iso()
          .update(bytes.subarray(0, at))
          .update(bytes.subarray(at))
          .digest()
          .toString('hex');
        expect(crc(bytes)).toBe(bitwise(bytes));
        expect(split).toBe(crc(bytes));
      }),
    );
  });
});
