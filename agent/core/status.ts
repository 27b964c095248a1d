/**
 * The verification outcome, numbered exactly as Codenotary CAS numbered it, so callers
 * written for `cas authenticate` (Home Assistant's Supervisor) keep working.
 * See docs/architecture.md, "Status model".
 */
export const Status = {
  TRUSTED: 0,
  UNTRUSTED: 1,
  UNKNOWN: 2,
  UNSUPPORTED: 3,
  REVOKED: 4,
} as const;

export type StatusName = keyof typeof Status;
export type StatusCode = (typeof Status)[StatusName];

export const statusNames = Object.keys(Status) as StatusName[];
