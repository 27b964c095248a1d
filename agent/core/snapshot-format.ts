import { maxEnvelopeBytes } from './dsse';
import { VouchError } from './errors';
import { maxNoteSize } from './note';
import { fullWidth, type TileId } from './tiles';

/**
 * The snapshot file for air-gapped devices (docs/formats.md "Snapshot file"): one POSIX tar
 * holding a checkpoint and every entry it covers, as the log serves them, in this order:
 *
 *   vouch-snapshot.json          {"format":"vouch-snapshot/v1","origin":…,"size":…}
 *   checkpoint                   the signed checkpoint note, with its cosignatures
 *   roots/<V>.json …             the trust root chain, ascending (may be empty; core/layout.ts)
 *   tile/entries/<N>[.p/<W>] …   every entry bundle of the tree, in order (c2sp.org/tlog-tiles)
 *
 * What export and import agree on: the names, the manifest, the order and each member's cap.
 * Written by agent/snapshot-writer.ts (from a device's state or a publisher's log), read by
 * agent/device/sync/snapshot-import.ts.
 */

export const manifestName = 'vouch-snapshot.json';
/** The checkpoint as tlog-tiles names it. */
export const checkpointName = 'checkpoint';
const format = 'vouch-snapshot/v1';

/** Caps on each member, the same for export and import: nothing is written that import refuses. */
export const maxManifestBytes = 4096;
export const maxCheckpointBytes = maxNoteSize;
export const maxRootBytes = maxEnvelopeBytes;

/** What the manifest declares: the checkpoint's origin and tree size. */
export interface SnapshotManifest {
  readonly origin: string;
  readonly size: number;
}

export function encodeManifest({ origin, size }: SnapshotManifest): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify({ format, origin, size })));
}

/** JSON is UTF-8 (RFC 8259 §8.1): bytes that are not are refused, not replaced by U+FFFD. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The manifest's origin and size; SNAPSHOT_INVALID for anything but a vouch-snapshot/v1 manifest. */
export function parseManifest(bytes: Uint8Array): SnapshotManifest {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    throw snapshotInvalid(`${manifestName} is not JSON`);
  }
  const manifest = value as { format?: unknown; origin?: unknown; size?: unknown };
  if (
    manifest?.format !== format ||
    typeof manifest.origin !== 'string' ||
    !Number.isSafeInteger(manifest.size) ||
    (manifest.size as number) < 0
  ) {
    throw snapshotInvalid(`not a ${format} file`);
  }
  return { origin: manifest.origin, size: manifest.size as number };
}

/** The entry bundles of a tree of `size`, from 0, in order: all full but the last. */
export function* snapshotBundles(size: number): Generator<TileId> {
  for (let index = 0; index * fullWidth < size; index++) {
    yield { level: 0, index, width: Math.min(fullWidth, size - index * fullWidth) };
  }
}

export function snapshotInvalid(message: string): VouchError {
  return new VouchError('SNAPSHOT_INVALID', `snapshot: ${message}`);
}
