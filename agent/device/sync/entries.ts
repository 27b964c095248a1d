import { authorizeLoggedEnvelope } from '../../core/authorize';
import { toHex } from '../../core/encoding';
import { asVouchError } from '../../core/errors';
import { hashLeaf, hashSize } from '../../core/merkle';
import type { Root } from '../../core/root';
import { parseUtcTime } from '../../core/time';
import type { NewRecord } from '../store/subjects';

/**
 * Checks a run of log entries for the index: each entry's RFC 6962 leaf hash (compared
 * with the tiles and fed to the compact range by the caller), and each statement's
 * signature, signer, scope and validity window under the current root. An entry that is
 * not a valid statement under this root is logged but not indexed, and reported.
 * Pure CPU work: runs on a worker thread (verify.worker.ts) or inline for small syncs.
 */

export interface SkippedEntry {
  readonly logIndex: number;
  readonly code: string;
  readonly reason: string;
}

export interface CheckedEntries {
  /** Leaf hashes, 32 bytes per entry, in order. */
  readonly leafHashes: Uint8Array;
  readonly records: NewRecord[];
  readonly skipped: SkippedEntry[];
}

export function checkEntries(
  root: Root,
  firstIndex: number,
  entries: readonly Uint8Array[],
): CheckedEntries {
  const leafHashes = new Uint8Array(entries.length * hashSize);
  const records: NewRecord[] = [];
  const skipped: SkippedEntry[] = [];
  entries.forEach((entry, i) => {
    const logIndex = firstIndex + i;
    leafHashes.set(hashLeaf(entry), i * hashSize);
    try {
      const { statement, signer, keys } = authorizeLoggedEnvelope(root, entry);
      const key = toHex((keys[0] as (typeof keys)[number]).raw);
      const issuedAtMs = parseUtcTime(statement.issuedAt, 'issuedAt');
      for (const subject of statement.subjects) {
        records.push({
          sha256: subject.sha256,
          logIndex,
          name: subject.name,
          status: statement.status,
          signer,
          issuedAtMs,
          ...(statement.reason !== undefined ? { reason: statement.reason } : {}),
          key,
        });
      }
    } catch (error) {
      const failure = asVouchError(error);
      if (failure.code === 'INTERNAL') throw error;
      skipped.push({ logIndex, code: failure.code, reason: failure.message });
    }
  });
  return { leafHashes, records, skipped };
}
