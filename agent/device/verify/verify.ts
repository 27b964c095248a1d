import { plannedPool } from '../../content/pool';
import { parseDigest } from '../../core/digest';
import { asVouchError, type ErrorCode, VouchError } from '../../core/errors';
import type { IgnoredRecord, StatusOptions, Verdict } from '../../core/policy';
import { type DigestAlgorithm, merkleAlgorithm } from '../../core/statement';
import type { StatusName } from '../../core/status';
import { formatUtcTime } from '../../core/time';
import { freshness, trustedNow } from '../status';
import { loadState, type TrustState } from '../store/state';
import { readSyncStatus } from '../store/status';
import { verdictFor } from '../store/verdict';
import {
  type DigestChoice,
  type Digester,
  type FileVerdict,
  mayHashChunked,
  merkleVerdict,
  verifyFile,
} from './chunked';

/**
 * `vouch verify` and `vouch authenticate`: hash files on the device (HashPool sized by the
 * hardware plan), look each digest up in the local verified index, apply the policy. Only
 * local files are read: no network (docs/architecture.md "Status model"). "Could not check" (no
 * trust state, a damaged one, an expired root, a file that cannot be read) is an outcome of
 * its own with its error, never UNTRUSTED.
 */

/** A file to hash, or a digest (64 lowercase hex) taken as given: SHA-256 or merkle-sha256-1mib. */
export type Subject =
  | { readonly file: string }
  | { readonly sha256: string }
  | { readonly merkle: string };

export interface VerifyOptions {
  readonly stateDir: string;
  /** Freshness bound (ms, `sync.maxAge`): older data is reported stale, still answered from. */
  readonly maxAge: number;
  /** Only statements by this signer count (and root-key revocations). */
  readonly signer?: string;
  /** Bytes read so far of a file being hashed, after each chunk. */
  readonly onProgress?: (path: string, bytes: number) => void;
  /** Which digest of a file to look up (chunked.ts verifyFile); default `auto`. */
  readonly digest?: DigestChoice;
  /**
   * What hashes the files: the caller's (the agent's, which it keeps), or else a pool sized
   * for them, started and closed here.
   */
  readonly digester?: Digester;
  readonly clock?: () => number;
  /** The trust state as the caller holds it (the agent), at the time of asking; else loaded. */
  readonly trust?: OpenedTrust;
}

export interface IgnoredStatement {
  readonly signer: string;
  readonly logIndex: number;
  readonly code: string;
  readonly reason: string;
}

export interface SubjectResult {
  /** The path as given, or `sha256:<hex>` / `merkle-sha256-1mib:<hex>`. */
  readonly subject: string;
  /** Which digest was looked up; null when a file could not be hashed or was not read. */
  readonly digest: DigestAlgorithm | null;
  /** The SHA-256; null when not computed (a file decided by its chunked digest) or not read. */
  readonly sha256: string | null;
  /** The merkle-sha256-1mib root, when it was computed or given; else null. */
  readonly merkle: string | null;
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
  /** docs/security.md "The device state": older than maxAge; the answers still come from local data. */
  readonly stale: boolean;
  readonly freshSince: string | null;
  readonly size: number | null;
  readonly rootVersion: number | null;
  /** Trusted time the policy was applied at (RFC 3339). */
  readonly now: string;
  readonly results: readonly SubjectResult[];
}

/** For `vouch verify digest`: a digest as core/digest.ts reads what is typed. */
export function parseSubjectDigest(text: string): Subject {
  const { algorithm, hex } = parseDigest(text);
  return algorithm === merkleAlgorithm ? { merkle: hex } : { sha256: hex };
}

/** What every verify report says about the trust state it answered from. */
export type TrustSummary = Omit<VerifyReport, 'results'>;

export interface OpenedTrust {
  /** undefined when the device has none, or a damaged one (then `error` says which). */
  readonly state: TrustState | undefined;
  readonly error: VouchError | undefined;
  /** Trusted time (ms) the policy is applied at: the clock, never below the clock floor. */
  readonly now: number;
  readonly summary: TrustSummary;
}

/** The trust state as loaded: undefined when the device has none or a damaged one (`error`). */
export interface LoadedTrust {
  readonly state: TrustState | undefined;
  readonly error: VouchError | undefined;
  /** When the last sync from a network mirror succeeded (ms): freshness.ts's fallback. */
  readonly lastMirrorSync: number | undefined;
}

/** Loads the trust state; no state, or a damaged one, is not thrown but said in `error`. */
export async function loadTrust(stateDir: string): Promise<LoadedTrust> {
  let state: TrustState | undefined;
  let error: VouchError | undefined;
  try {
    state = await loadState(stateDir);
    if (!state) {
      error = new VouchError(
        'NO_TRUST_STATE',
        `no trust state in ${stateDir}: run vouch sync --root ROOT (or snapshot import) first`,
      );
    }
  } catch (failure) {
    error = asVouchError(failure);
  }
  const lastMirrorSync = state ? (await readSyncStatus(stateDir)).lastMirrorSuccess?.at : undefined;
  return { state, error, lastMirrorSync };
}

/** A loaded trust state as answers use it at `clock()`: trusted now, freshness, its summary. */
export function trustAt(
  stateDir: string,
  { state, error, lastMirrorSync }: LoadedTrust,
  maxAge: number,
  clock: () => number = Date.now,
): OpenedTrust {
  const now = trustedNow(state, clock);
  const fresh = freshness(state, lastMirrorSync, now, maxAge);
  return {
    state,
    error,
    now,
    summary: {
      stateDir,
      state: state ? 'ok' : error?.code === 'NO_TRUST_STATE' ? 'missing' : 'invalid',
      stale: fresh.stale,
      freshSince: fresh.since === undefined ? null : formatUtcTime(fresh.since),
      size: state?.checkpoint.checkpoint.size ?? null,
      rootVersion: state?.root.version ?? null,
      now: formatUtcTime(now),
    },
  };
}

/**
 * The device's trust state for answering questions, with what a report says about it.
 * No state, or a damaged one, is not thrown: each answer is then "could not check".
 */
export async function openTrust(
  stateDir: string,
  maxAge: number,
  clock: () => number = Date.now,
): Promise<OpenedTrust> {
  return trustAt(stateDir, await loadTrust(stateDir), maxAge, clock);
}

export async function verifySubjects(
  subjects: readonly Subject[],
  options: VerifyOptions,
): Promise<VerifyReport> {
  // The hash workers boot while the state loads (each takes tens of milliseconds): one per
  // file, or all of them when a file may be hashed by its chunked digest.
  const paths = subjects.flatMap((subject) => ('file' in subject ? [subject.file] : []));
  const starting =
    paths.length > 0 && !options.digester
      ? mayHashChunked(paths, options.digest ?? 'auto').then((chunked) =>
          plannedPool(paths, chunked ? { warm: Number.POSITIVE_INFINITY } : {}),
        )
      : undefined;
  starting?.catch(() => {}); // awaited below: a failure is not unhandled meanwhile
  let trust: OpenedTrust;
  let files: Awaited<ReturnType<typeof verifyFiles>> | undefined;
  try {
    trust = options.trust ?? (await openTrust(options.stateDir, options.maxAge, options.clock));
    const digester = options.digester ?? (await starting);
    // Files are hashed only when there is something to check them against.
    if (trust.state && digester && paths.length > 0)
      files = await verifyFiles(digester, subjects, trust.state, trust.now, options);
  } finally {
    await (await starting?.catch(() => undefined))?.close();
  }
  const { state, error: stateError, now, summary } = trust;
  const status = { signer: options.signer };
  const results = subjects.map((subject, i): SubjectResult => {
    const looked = files?.[i];
    const failure = stateError ?? (looked && 'error' in looked ? looked.error : undefined);
    const { base, verdict } = lookUp(subject, looked, state && { state, now, status });
    if (failure || !verdict) {
      return couldNotCheck(base, failure ?? new VouchError('INTERNAL', 'no verdict'));
    }
    if (verdict.outcome === 'could-not-check') {
      return couldNotCheck(base, new VouchError('CANNOT_CHECK', verdict.reason));
    }
    return { ...base, ...outcomeOf(verdict), name: verdict.decidedBy?.name ?? null };
  });
  return { ...summary, results };
}

/** What a result says of its verdict (file and image results alike). */
export type Outcome = Pick<
  SubjectResult,
  'status' | 'code' | 'signer' | 'logIndex' | 'issuedAt' | 'reason' | 'ignored' | 'error'
>;

/** The outcome of a verdict with a status: the statement that decided, and those left out. */
export function outcomeOf(verdict: Extract<Verdict, { outcome: 'status' }>): Outcome {
  const decided = verdict.decidedBy;
  return {
    status: verdict.status,
    code: verdict.code,
    signer: decided?.signer ?? null,
    logIndex: decided ? Number(decided.logIndex) : null,
    issuedAt: decided?.issuedAt ?? null,
    reason: verdict.reason,
    ignored: describeIgnored(verdict.ignored),
  };
}

/** "Could not check", with its error: no status, never UNTRUSTED. */
export function couldNotCheckOutcome(error: VouchError): Outcome {
  return {
    status: null,
    code: null,
    signer: null,
    logIndex: null,
    issuedAt: null,
    reason: `could not check: ${error.message}`,
    ignored: [],
    error: { code: error.code, message: error.message },
  };
}

/** The statements a verdict left out, and why, as results report them. */
function describeIgnored(ignored: readonly IgnoredRecord[]): IgnoredStatement[] {
  return ignored.map(({ record, code, reason }) => ({
    signer: record.signer,
    logIndex: Number(record.logIndex),
    code,
    reason,
  }));
}

/** What a result says about its subject and its digests, whatever the verdict. */
type Base = Pick<SubjectResult, 'subject' | 'digest' | 'sha256' | 'merkle' | 'size'>;

/** A subject's digests and verdict: a file's from verifyFile, a given digest's looked up here. */
function lookUp(
  subject: Subject,
  looked: FileVerdict | { readonly error: VouchError } | undefined,
  trust: { state: TrustState; now: number; status: StatusOptions } | undefined,
): { readonly base: Base; readonly verdict: Verdict | undefined } {
  if ('file' in subject) {
    const found = looked && 'verdict' in looked ? looked : undefined;
    return {
      base: {
        subject: subject.file,
        digest: found?.digest ?? null,
        sha256: found?.sha256 ?? null,
        merkle: found?.merkle ?? null,
        size: found?.size ?? null,
      },
      verdict: found?.verdict,
    };
  }
  if ('sha256' in subject) {
    return {
      base: {
        subject: `sha256:${subject.sha256}`,
        digest: 'sha256',
        sha256: subject.sha256,
        merkle: null,
        size: null,
      },
      verdict: trust && verdictFor(trust.state, subject.sha256, trust.now, trust.status),
    };
  }
  return {
    base: {
      subject: `${merkleAlgorithm}:${subject.merkle}`,
      digest: merkleAlgorithm,
      sha256: null,
      merkle: subject.merkle,
      size: null,
    },
    verdict: trust && merkleVerdict(trust.state, subject.merkle, trust.now, trust.status),
  };
}

function couldNotCheck(base: Base, error: VouchError): SubjectResult {
  return { ...base, ...couldNotCheckOutcome(error), name: null };
}

/** Each file subject hashed with `digester` and looked up (undefined for given digests). */
async function verifyFiles(
  digester: Digester,
  subjects: readonly Subject[],
  state: TrustState,
  now: number,
  options: VerifyOptions,
): Promise<(FileVerdict | { readonly error: VouchError } | undefined)[]> {
  const { onProgress } = options;
  return Promise.all(
    subjects.map((subject) =>
      'file' in subject
        ? verifyFile(digester, subject.file, state, now, {
            choice: options.digest ?? 'auto',
            status: { signer: options.signer },
            onProgress: onProgress && ((bytes) => onProgress(subject.file, bytes)),
          }).catch((error) => ({ error: asVouchError(error) }))
        : undefined,
    ),
  );
}
