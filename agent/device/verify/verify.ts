import { planHashing, readProfile } from '../../../hw';
import { asVouchError, type ErrorCode, VouchError } from '../../core/errors';
import type { StatusName } from '../../core/status';
import { formatUtcTime } from '../../core/time';
import { freshness, trustedNow } from '../status';
import { loadState, type TrustState } from '../store/state';
import { readSyncStatus } from '../store/status';
import { verdictFor } from '../store/verdict';
import { HashPool } from './pool';

/**
 * `vouch verify` and `vouch authenticate`: hash files on the device (HashPool sized by the
 * hardware plan), look each digest up in the local verified index, apply the policy. Only
 * local files are read: no network (ARCHITECTURE.md "Status model"). "Could not check" (no
 * trust state, a damaged one, an expired root, a file that cannot be read) is an outcome of
 * its own with its error, never UNTRUSTED.
 */

/** A file to hash, or a SHA-256 digest (64 lowercase hex) taken as given. */
export type Subject = { readonly file: string } | { readonly sha256: string };

export interface VerifyOptions {
  readonly stateDir: string;
  /** Freshness bound (ms, `sync.maxAge`): older data is reported stale, still answered from. */
  readonly maxAge: number;
  /** Only statements by this signer count (and root-key revocations). */
  readonly signer?: string;
  /** Bytes read so far of a file being hashed, after each chunk. */
  readonly onProgress?: (path: string, bytes: number) => void;
  readonly clock?: () => number;
}

export interface IgnoredStatement {
  readonly signer: string;
  readonly logIndex: number;
  readonly code: string;
  readonly reason: string;
}

export interface SubjectResult {
  /** The path as given, or `sha256:<hex>`. */
  readonly subject: string;
  /** The digest looked up; null when a file could not be hashed or was not read. */
  readonly sha256: string | null;
  /** Bytes hashed (files only). */
  readonly size: number | null;
  /** null when the subject could not be checked (then `error` says why). */
  readonly status: StatusName | null;
  /** The CAS status number; null when the subject could not be checked. */
  readonly code: number | null;
  /** The statement that decided: its signer, subject name, log index and time. */
  readonly signer: string | null;
  readonly name: string | null;
  readonly logIndex: number | null;
  readonly issuedAt: string | null;
  readonly reason: string;
  readonly ignored: readonly IgnoredStatement[];
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

export interface VerifyReport {
  readonly stateDir: string;
  /** Whether the device has a (valid) trust state. */
  readonly state: 'ok' | 'missing' | 'invalid';
  /** README "Security model": older than maxAge; the answers still come from local data. */
  readonly stale: boolean;
  readonly freshSince: string | null;
  readonly size: number | null;
  readonly rootVersion: number | null;
  /** Trusted time the policy was applied at (RFC 3339). */
  readonly now: string;
  readonly results: readonly SubjectResult[];
}

const digestPattern = /^(?:sha256:)?([0-9a-fA-F]{64})$/;

/** `sha256:<hex>` or bare hex, either case → 64 lowercase hex; USAGE otherwise. */
export function parseDigest(text: string): string {
  const match = digestPattern.exec(text);
  if (!match?.[1]) {
    throw new VouchError('USAGE', `not a SHA-256 digest (sha256:<64 hex>): ${text.slice(0, 80)}`);
  }
  return match[1].toLowerCase();
}

export async function verifySubjects(
  subjects: readonly Subject[],
  options: VerifyOptions,
): Promise<VerifyReport> {
  const clock = options.clock ?? Date.now;
  let state: TrustState | undefined;
  let stateError: VouchError | undefined;
  try {
    state = await loadState(options.stateDir);
    if (!state) {
      stateError = new VouchError(
        'NO_TRUST_STATE',
        `no trust state in ${options.stateDir}: run vouch sync --root ROOT (or snapshot import) first`,
      );
    }
  } catch (error) {
    stateError = asVouchError(error);
  }
  const now = trustedNow(state, clock);
  const lastSuccess = state ? (await readSyncStatus(options.stateDir)).lastSuccess?.at : undefined;
  const fresh = freshness(state, lastSuccess, now, options.maxAge);
  // Files are hashed only when there is something to check them against.
  const digests = stateError ? undefined : await hashAll(subjects, options.onProgress);
  const results = subjects.map((subject, i): SubjectResult => {
    const label = 'file' in subject ? subject.file : `sha256:${subject.sha256}`;
    const hashed = digests?.[i];
    const base = {
      subject: label,
      sha256:
        'file' in subject ? (hashed && 'sha256' in hashed ? hashed.sha256 : null) : subject.sha256,
      size: hashed && 'size' in hashed ? hashed.size : null,
    };
    const failure = stateError ?? (hashed && 'error' in hashed ? hashed.error : undefined);
    if (failure || !state || base.sha256 === null) {
      return couldNotCheck(base, failure ?? new VouchError('INTERNAL', 'no digest'));
    }
    const verdict = verdictFor(state, base.sha256, now, { signer: options.signer });
    if (verdict.outcome === 'could-not-check') {
      return couldNotCheck(base, new VouchError('CANNOT_CHECK', verdict.reason));
    }
    const decided = verdict.decidedBy;
    return {
      ...base,
      status: verdict.status,
      code: verdict.code,
      signer: decided?.signer ?? null,
      name: decided?.name ?? null,
      logIndex: decided ? Number(decided.logIndex) : null,
      issuedAt: decided?.issuedAt ?? null,
      reason: verdict.reason,
      ignored: verdict.ignored.map(({ record, code, reason }) => ({
        signer: record.signer,
        logIndex: Number(record.logIndex),
        code,
        reason,
      })),
    };
  });
  return {
    stateDir: options.stateDir,
    state: state ? 'ok' : stateError?.code === 'NO_TRUST_STATE' ? 'missing' : 'invalid',
    stale: fresh.stale,
    freshSince: fresh.since === undefined ? null : formatUtcTime(fresh.since),
    size: state?.checkpoint.checkpoint.size ?? null,
    rootVersion: state?.root.version ?? null,
    now: formatUtcTime(now),
    results,
  };
}

function couldNotCheck(
  base: Pick<SubjectResult, 'subject' | 'sha256' | 'size'>,
  error: VouchError,
): SubjectResult {
  return {
    ...base,
    status: null,
    code: null,
    signer: null,
    name: null,
    logIndex: null,
    issuedAt: null,
    reason: `could not check: ${error.message}`,
    ignored: [],
    error: { code: error.code, message: error.message },
  };
}

type Hashed = { readonly sha256: string; readonly size: number } | { readonly error: VouchError };

/** Digests of the file subjects (undefined for given digests), on a pool sized for their storage. */
async function hashAll(
  subjects: readonly Subject[],
  onProgress: VerifyOptions['onProgress'],
): Promise<(Hashed | undefined)[]> {
  const paths = subjects.flatMap((subject) => ('file' in subject ? [subject.file] : []));
  if (paths.length === 0) return subjects.map(() => undefined);
  const pool = new HashPool(planHashing(await readProfile({ root: '/', paths })));
  try {
    return await Promise.all(
      subjects.map((subject) =>
        'file' in subject
          ? pool
              .hash(subject.file, onProgress && ((bytes) => onProgress(subject.file, bytes)))
              .then(
                (digest): Hashed => digest,
                (error): Hashed => ({ error: asVouchError(error) }),
              )
          : undefined,
      ),
    );
  } finally {
    await pool.close();
  }
}
