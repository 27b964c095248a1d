import { type ErrorCode, VouchError } from './errors';

/**
 * Times in our formats are RFC 3339 UTC timestamps (`2025-01-31T12:00:00Z`, fractional
 * seconds allowed), the profile of ISO 8601 that every language can write. Only `Z`: an
 * offset would give one instant many spellings.
 */
const rfc3339Utc = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** Days in each month of a common year; February gains one in a leap year. */
const monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Milliseconds since the epoch; BAD_DATA (or `code`) for anything that is not a real UTC time. */
export function parseUtcTime(text: string, what: string, code: ErrorCode = 'BAD_DATA'): number {
  const match = rfc3339Utc.exec(text);
  if (match) {
    const year = Number(match[1]);
    const month = Number(match[2]);
    const day = Number(match[3]);
    const hour = Number(match[4]);
    const minute = Number(match[5]);
    const second = Number(match[6]);
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    // A real date and time of day (no 2025-02-30, no 24:00, no leap second).
    if (
      year >= 1970 &&
      month >= 1 &&
      month <= 12 &&
      day >= 1 &&
      day <= (monthDays[month - 1] as number) + (month === 2 && leap ? 1 : 0) &&
      hour <= 23 &&
      minute <= 59 &&
      second <= 59
    ) {
      const ms = Date.UTC(year, month - 1, day, hour, minute, second);
      return ms + Math.floor(Number(`0.${match[7] ?? '0'}`) * 1000);
    }
  }
  throw new VouchError(
    code,
    `${what}: ${JSON.stringify(text.slice(0, 64))} is not an RFC 3339 UTC time like 2025-01-31T12:00:00Z`,
  );
}

/** RFC 3339 UTC with whole seconds: the form we write. */
export function formatUtcTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
