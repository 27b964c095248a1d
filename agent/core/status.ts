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

/**
 * Worst first, the order in which statuses combine (docs/usage.md "Verifying files and digests"):
 * REVOKED > UNTRUSTED > UNSUPPORTED > UNKNOWN > TRUSTED. Not the numeric order: the CAS
 * numbers put UNKNOWN (2) and UNSUPPORTED (3) above UNTRUSTED (1).
 */
export const severity: readonly StatusName[] = [
  'REVOKED',
  'UNTRUSTED',
  'UNSUPPORTED',
  'UNKNOWN',
  'TRUSTED',
];

/** Whether `status` is at least as bad as `than`, by {@link severity}. */
export function atLeastAsBad(status: StatusName, than: StatusName): boolean {
  return severity.indexOf(status) <= severity.indexOf(than);
}
