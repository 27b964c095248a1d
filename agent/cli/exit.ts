import type { ErrorKind } from '../core/errors';
import { Status } from '../core/status';

/**
 * One exit-code convention for every command: verification outcomes use the CAS status
 * numbers (0–4); failures use sysexits.h, so scripts can tell "untrusted" from "broken".
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
