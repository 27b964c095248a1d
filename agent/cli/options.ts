import { InvalidArgumentError } from 'commander';
import { formatUtcTime, parseUtcTime } from '../core/time';

/** commander argument parsers shared by commands; a bad value is a usage error (exit 64). */

export function positiveInteger(value: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(value))
    throw new InvalidArgumentError('expected a positive integer');
  return Number(value);
}

/** `2025-01-31` (midnight UTC) or an RFC 3339 UTC time, normalized to RFC 3339 UTC. */
export function utcDate(value: string): string {
  const text = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  try {
    return formatUtcTime(parseUtcTime(text, 'date'));
  } catch {
    throw new InvalidArgumentError('expected a date like 2025-01-31 or 2025-01-31T12:00:00Z');
  }
}

/** For options given once per value (`--key a --key b`): the values in order. */
export function repeatable(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Commands that run by themselves and have subcommands too (`vouch agent`, `vouch agent
 * status`): they take the common options like a leaf command (program.ts inheritSettings).
 */
export const runsItself = new WeakSet<object>();
