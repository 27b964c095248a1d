import { toHex } from '../../core/encoding';
import {
  evaluateStatus,
  type IgnoredRecord,
  type StatusOptions,
  type Verdict,
} from '../../core/policy';
import { rootSignerId } from '../../core/root';
import type { DigestAlgorithm } from '../../core/statement';
import type { TrustState } from './state';

/** A digest to look a subject up by: a string is a SHA-256; another algorithm says so. */
export type SubjectDigest =
  | string
  | { readonly algorithm: DigestAlgorithm; readonly digest: string };

/**
 * The status of a subject from the device's state (docs/architecture.md "Status model"), at
 * trusted time `now`. A subject known by several digests (an image: its ID and its repo
 * digests) is decided by the statements about any of them, each statement once.
 * Statements were verified when synced; a statement whose signing key the current root no
 * longer lists for its signer (a key rotated out after a compromise) no longer counts, and
 * is reported as ignored.
 */
export function verdictFor(
  state: TrustState,
  sha256: string | readonly SubjectDigest[],
  now: number,
  options: StatusOptions = {},
): Verdict {
  const keysOf = new Map<string, Set<string>>([
    [rootSignerId, new Set(state.root.rootKeys.map((key) => toHex(key.raw)))],
    ...state.root.signers.map(
      (signer) => [signer.id, new Set(signer.keys.map((key) => toHex(key.raw)))] as const,
    ),
  ]);
  const retired: IgnoredRecord[] = [];
  const digests = typeof sha256 === 'string' ? [sha256] : sha256;
  const seen = new Set<bigint>();
  const records = digests.flatMap((digest) =>
    typeof digest === 'string'
      ? state.index.lookup(digest, 'sha256')
      : state.index.lookup(digest.digest, digest.algorithm),
  );
  // One statement naming two of the digests is one statement (log index is unique).
  const unique = records.filter(
    (record) => !seen.has(record.logIndex) && seen.add(record.logIndex),
  );
  const current = unique.filter((record) => {
    // Other signers' statements are left out, not reported (StatusOptions.signer).
    const other = record.signer !== options.signer && record.signer !== rootSignerId;
    if (options.signer !== undefined && other) return false;
    if (keysOf.get(record.signer)?.has(record.key) ?? false) return true;
    retired.push({
      record,
      code: 'SIGNER_UNKNOWN',
      reason: `signed by a key trust root v${state.root.version} no longer lists for ${record.signer}`,
    });
    return false;
  });
  const verdict = evaluateStatus(current, state.root, new Date(now), options);
  if (verdict.outcome !== 'status' || retired.length === 0) return verdict;
  return { ...verdict, ignored: [...retired, ...verdict.ignored] };
}
