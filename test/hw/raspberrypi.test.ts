import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRevision, decodeThrottled } from '../../hw/raspberrypi';

const GB = 2 ** 30;

describe('decodeRevision', () => {
  // Rows of "New-style revision codes in use" (Raspberry Pi documentation, revision-codes).
  it.each([
    ['a02082', '3B', '1.2', 'BCM2837', GB, 'Sony UK'],
    ['a22082', '3B', '1.2', 'BCM2837', GB, 'Embest'],
    ['a52082', '3B', '1.2', 'BCM2837', GB, 'Stadium'],
    ['a020d3', '3B+', '1.3', 'BCM2837', GB, 'Sony UK'],
    ['9020e1', '3A+', '1.1', 'BCM2837', GB / 2, 'Sony UK'],
    ['902120', 'Zero 2 W', '1.0', 'BCM2837', GB / 2, 'Sony UK'],
    ['c03114', '4B', '1.4', 'BCM2711', 4 * GB, 'Sony UK'],
    ['d03115', '4B', '1.5', 'BCM2711', 8 * GB, 'Sony UK'],
    ['c03130', '400', '1.0', 'BCM2711', 4 * GB, 'Sony UK'],
    ['a03140', 'CM4', '1.0', 'BCM2711', GB, 'Sony UK'],
    ['d04170', '5', '1.0', 'BCM2712', 8 * GB, 'Sony UK'],
    ['e04171', '5', '1.1', 'BCM2712', 16 * GB, 'Sony UK'],
    ['d04190', '500', '1.0', 'BCM2712', 8 * GB, 'Sony UK'],
    ['c041a0', 'CM5 Lite', '1.0', 'BCM2712', 4 * GB, 'Sony UK'],
  ])('%s is a %s rev %s', (code, type, revision, processor, memory, manufacturer) => {
    expect(decodeRevision(code)).toEqual({ code, type, revision, processor, memory, manufacturer });
  });

  it('ignores the warranty and OTP bits, and says "other" memory as null', () => {
    // Bit 25 (warranty voided by overclocking) on a 3B; memory field 7 ("other").
    expect(decodeRevision('2a02082')).toMatchObject({ type: '3B', memory: GB });
    expect(decodeRevision('f04170')).toMatchObject({ type: '5', memory: null });
  });

  it('gives null for old-style codes (bit 23 clear) and for what is not a code', () => {
    for (const code of ['0002', '0015', '1000002', '', 'Raspberry', '-a02082', '123456789'])
      expect(decodeRevision(code)).toBeNull();
  });

  it('decodes every new-style code field by field, and never throws on strings', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (value) => {
        const decoded = decodeRevision(value.toString(16));
        if (Math.floor(value / 2 ** 23) % 2 === 0) {
          expect(decoded).toBeNull();
        } else {
          expect(decoded?.revision).toBe(`1.${value % 16}`);
          const memory = Math.floor(value / 2 ** 20) % 8;
          expect(decoded?.memory).toBe(memory === 7 ? null : 2 ** (28 + memory));
        }
      }),
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        decodeRevision(text);
      }),
    );
  });
});

describe('decodeThrottled', () => {
  it('splits the bits into now (0–3) and since boot (16–19)', () => {
    expect(decodeThrottled(0)).toEqual({ raw: '0x0', now: [], sinceBoot: [] });
    // The classic weak power supply: under-voltage and throttling, now and since boot.
    expect(decodeThrottled(0x50005)).toEqual({
      raw: '0x50005',
      now: ['under-voltage', 'throttled'],
      sinceBoot: ['under-voltage', 'throttled'],
    });
    expect(decodeThrottled(0xa0000)).toEqual({
      raw: '0xa0000',
      now: [],
      sinceBoot: ['frequency-capped', 'soft-temperature-limit'],
    });
    expect(decodeThrottled(0xf)).toMatchObject({
      now: ['under-voltage', 'frequency-capped', 'throttled', 'soft-temperature-limit'],
    });
  });
});
