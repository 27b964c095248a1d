import { type ErrorCode, VouchError } from './errors';

/**
 * Times in our formats are RFC 3339 UTC timestamps (`2025-01-31T12:00:00Z`, fractional
 * seconds allowed), the profile of ISO 8601 that every language can write. Only `Z`: an
 * offset would give one instant many spellings.
 */
const rfc3339Utc = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** Milliseconds since the epoch; BAD_DATA (or `code`) for anything that is not a real UTC time. */
export function parseUtcTime(text: string, what: string, code: ErrorCode = 'BAD_DATA'): number {
  const match = rfc3339Utc.exec(text);
  if (match) {
    const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const ms = Date.UTC(year, month - 1, day, hour, minute, second);
    const date = new Date(ms);
    // Date.UTC rolls 2025-02-30 over into March; a real date reads back unchanged.
    if (
      year >= 1970 &&
      date.getUTCFullYear() === year &&
      date.getUTCMonth() === month - 1 &&
      date.getUTCDate() === day &&
      date.getUTCHours() === hour &&
      date.getUTCMinutes() === minute &&
      date.getUTCSeconds() === second
    ) {
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
