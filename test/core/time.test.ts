import { describe, expect, it } from 'vitest';
import { formatUtcTime, parseUtcTime } from '../../agent/core/time';
import { expectVouchError } from '../helpers/errors';

describe('RFC 3339 UTC times', () => {
  it.each([
    ['2025-01-31T12:00:00Z', Date.UTC(2025, 0, 31, 12)],
    ['2024-02-29T23:59:59Z', Date.UTC(2024, 1, 29, 23, 59, 59)],
    ['2025-01-31T12:00:00.5Z', Date.UTC(2025, 0, 31, 12) + 500],
    ['2025-01-31T12:00:00.123456789Z', Date.UTC(2025, 0, 31, 12) + 123],
    ['1970-01-01T00:00:00Z', 0],
  ])('reads %s', (text, ms) => {
    expect(parseUtcTime(text, 't')).toBe(ms);
  });

  it.each([
    '2025-02-29T00:00:00Z',
    '2025-13-01T00:00:00Z',
    '2025-01-01T24:00:00Z',
    '2025-01-01T00:00:60Z',
    '2025-01-01T00:00:00+00:00',
    '2025-01-01t00:00:00z',
    '2025-01-01 00:00:00Z',
    '2025-01-01',
    '1969-12-31T23:59:59Z',
    '',
  ])('refuses %j', (text) => {
    expectVouchError(() => parseUtcTime(text, 't'), 'BAD_DATA');
    expectVouchError(() => parseUtcTime(text, 't', 'ROOT_INVALID'), 'ROOT_INVALID');
  });

  it('gives a time read again the same, and still refuses a bad one after it', () => {
    const text = '2025-01-31T12:00:00.5Z';
    for (let i = 0; i < 3; i++) {
      expect(parseUtcTime(text, 't')).toBe(Date.UTC(2025, 0, 31, 12) + 500);
      expectVouchError(() => parseUtcTime(`${text} `, 't'), 'BAD_DATA');
      expectVouchError(() => parseUtcTime('', 't'), 'BAD_DATA');
    }
  });

  it('writes whole seconds with Z', () => {
    expect(formatUtcTime(Date.UTC(2025, 0, 31, 12, 0, 0, 999))).toBe('2025-01-31T12:00:00Z');
    expect(parseUtcTime(formatUtcTime(1_700_000_000_000), 't')).toBe(1_700_000_000_000);
  });
});
