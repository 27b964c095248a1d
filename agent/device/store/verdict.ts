import { toHex } from '../../core/encoding';
import {
  evaluateStatus,
  type IgnoredRecord,
  type StatusOptions,
  type Verdict,
} from '../../core/policy';
import { rootSignerId } from '../../core/root';
import type { TrustState } from './state';

/**
 * The status of a subject digest from the device's state (ARCHITECTURE.md "Status
 * model"), at trusted time `now`. Statements were verified when synced; a statement whose
 * signing key the current root no longer lists for its signer (a key rotated out after a
 * compromise) no longer counts, and is reported as ignored.
 */
export function verdictFor(
  state: TrustState,
  sha256: string,
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
  const current = state.index.lookup(sha256).filter((record) => {
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
