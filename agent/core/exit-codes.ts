import { type ErrorCode, type ErrorKind, errorKinds } from './errors';
import { Status, type StatusName, severity } from './status';

/**
 * One exit-code convention for every command, and the `exitCode` of JSON reports (the CLI's
 * and the agent API's): verification outcomes use the CAS status numbers (0–4); failures
 * use sysexits.h, so scripts can tell "untrusted" from "broken".
 */
export const ExitCode = {
  ...Status,
  /** Success for commands that do not verify anything; same number as TRUSTED. */
  OK: 0,
  USAGE: 64,
  DATA: 65,
  UNAVAILABLE: 69,
  INTERNAL: 70,
  IO: 74,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const exitCodeByKind: Record<ErrorKind, ExitCode> = {
  usage: ExitCode.USAGE,
  data: ExitCode.DATA,
  unavailable: ExitCode.UNAVAILABLE,
  internal: ExitCode.INTERNAL,
  io: ExitCode.IO,
};

export function exitCodeFor(kind: ErrorKind): ExitCode {
  return exitCodeByKind[kind];
}

/**
 * The exit code for a set of results: a subject that could not be checked decides (the
 * first such, by its error's kind: 69 no trust state or expired root, 74 unreadable file,
 * 65 damaged state), since then no status holds for the whole set; otherwise the worst
 * status, REVOKED > UNTRUSTED > UNSUPPORTED > UNKNOWN > TRUSTED, as its CAS number.
 */
export function exitCodeOf(
  results: readonly {
    readonly status: StatusName | null;
    readonly error?: { readonly code: ErrorCode };
  }[],
): ExitCode {
  const failed = results.find((result) => result.error);
  if (failed?.error) return exitCodeFor(errorKinds[failed.error.code]);
  const worst = severity.find((name) => results.some((result) => result.status === name));
  return ExitCode[worst ?? 'TRUSTED'];
}
