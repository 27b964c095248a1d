import { VouchError } from './errors';
import { checkSigner, type Root, requireUnexpired, rootSignerId, scopeMatches } from './root';
import type { StatementStatus } from './statement';
import { Status, type StatusCode, type StatusName } from './status';

/**
 * The status of one subject digest, from the statements known about it (docs/architecture.md,
 * "Status model"): the latest statement, in log order, of a signer the root authorizes
 * wins; a revocation signed by a root key overrides everything; statements outside their
 * signer's scope or validity window are ignored and reported. "Could not check" is an
 * outcome of its own and never UNTRUSTED.
 */

/** One statement about one subject digest, as the device's index keeps it. */
export interface StatusRecord {
  /** Position of the statement's envelope in the log: the order that decides. */
  readonly logIndex: bigint;
  /** The subject name the statement gives this digest. */
  readonly name: string;
  readonly status: StatementStatus;
  readonly signer: string;
  /** RFC 3339 UTC, from the statement. */
  readonly issuedAt: string;
  readonly reason?: string;
}

export interface IgnoredRecord {
  readonly record: StatusRecord;
  readonly code: 'SIGNER_UNKNOWN' | 'SIGNER_OUT_OF_SCOPE' | 'SIGNER_OUT_OF_WINDOW';
  readonly reason: string;
}

export type Verdict =
  | {
      readonly outcome: 'status';
      readonly status: StatusName;
      readonly code: StatusCode;
      readonly reason: string;
      /** The record that decided; absent for UNKNOWN. */
      readonly decidedBy?: StatusRecord;
      readonly ignored: readonly IgnoredRecord[];
    }
  | { readonly outcome: 'could-not-check'; readonly reason: string };

const statusOf: Record<StatementStatus, StatusName> = {
  trusted: 'TRUSTED',
  untrusted: 'UNTRUSTED',
  unsupported: 'UNSUPPORTED',
  revoked: 'REVOKED',
};

export interface StatusOptions {
  /**
   * The name the subject is being checked under (e.g. the image reference about to run): a
   * signer counts only if its scopes also cover that name, so a signer for one namespace
   * cannot vouch for, or untrust, another's images.
   */
  readonly name?: string;
  /**
   * Only this signer's statements count (`vouch authenticate --signerID`, as CAS did); other
   * signers' are left out, not reported. Revocations by a root key still count.
   */
  readonly signer?: string;
}

/**
 * The status of a subject from its records (signatures already verified when they were
 * logged and synced), under `options` (see StatusOptions).
 */
export function evaluateStatus(
  records: readonly StatusRecord[],
  root: Root,
  now: Date,
  options: StatusOptions = {},
): Verdict {
  try {
    requireUnexpired(root, now);
  } catch (error) {
    if (error instanceof VouchError && error.code === 'ROOT_EXPIRED') {
      return { outcome: 'could-not-check', reason: error.message };
    }
    throw error;
  }
  const ignored: IgnoredRecord[] = [];
  let latest: StatusRecord | undefined;
  let rootRevocation: StatusRecord | undefined;
  for (const record of records) {
    if (record.signer === rootSignerId) {
      if (record.status === 'revoked') {
        if (!rootRevocation || record.logIndex > rootRevocation.logIndex) rootRevocation = record;
      } else {
        ignored.push({
          record,
          code: 'SIGNER_OUT_OF_SCOPE',
          reason: `root keys may only revoke, not mark ${record.status}`,
        });
      }
      continue;
    }
    if (options.signer !== undefined && record.signer !== options.signer) continue;
    const check = checkSigner(root, record.signer, [record.name], record.issuedAt);
    if (!check.ok) {
      ignored.push({ record, code: check.code, reason: check.reason });
    } else if (
      options.name !== undefined &&
      !check.signer.scopes.some((glob) => scopeMatches(glob, options.name as string))
    ) {
      ignored.push({
        record,
        code: 'SIGNER_OUT_OF_SCOPE',
        reason: `signer ${record.signer} may not speak for ${options.name}`,
      });
    } else if (!latest || record.logIndex > latest.logIndex) {
      latest = record;
    }
  }
  if (rootRevocation) {
    return verdict('REVOKED', rootRevocation, ignored, 'revoked by a root key');
  }
  if (!latest) {
    return {
      outcome: 'status',
      status: 'UNKNOWN',
      code: Status.UNKNOWN,
      reason:
        ignored.length > 0
          ? `no statement by an authorized signer (${ignored.length} ignored)`
          : 'no statement by an authorized signer',
      ignored,
    };
  }
  return verdict(
    statusOf[latest.status],
    latest,
    ignored,
    `marked ${latest.status} by ${latest.signer}`,
  );
}

function verdict(
  status: StatusName,
  record: StatusRecord,
  ignored: readonly IgnoredRecord[],
  what: string,
): Verdict {
  const why = record.reason ? `: ${record.reason}` : '';
  return {
    outcome: 'status',
    status,
    code: Status[status],
    reason: `${what} at ${record.issuedAt} (log index ${record.logIndex})${why}`,
    decidedBy: record,
    ignored,
  };
}
