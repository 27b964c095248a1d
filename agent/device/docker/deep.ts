import type Docker from 'dockerode';
import { dockerError } from '../../content/docker';
import { type HashPool, plannedPool } from '../../content/pool';
import { VouchError } from '../../core/errors';
import { findDaemonError, streamErrorMessage } from './daemon-errors';
import { exportImage, type ImageExport } from './export';
import { type ExportRead, readExport } from './export-archive';
import { compareExport, type DeepCheck, type ExportLayout } from './export-compare';

export type { DeepCheck, DeepLayer } from './export-compare';

/**
 * `vouch verify image --deep`: export the image as Docker would hand it to anyone
 * (`docker save`, streamed, never written to disk; export.ts), hash its config and every
 * layer on the hash pool (export-archive.ts), and check them against the image ID
 * (export-compare.ts). So what Docker would run is the image the statements name.
 *
 * dockerd rebuilds each layer tar from its tar-split metadata and the files on disk, and
 * stops when a file's content differs from what the layer recorded, when a recorded file
 * with content is gone (tar-split skips empty ones, so their loss goes unseen here: tree.ts
 * sees it), or when the rebuilt tar does not hash to the diff_id: those are the same finding
 * as a mismatch here, told by dockerd's message (daemon-errors.ts).
 */

/**
 * Exports image `id` (`sha256:<hex>`) and compares it with its ID. A mismatch is a result
 * (`matches: false`); a daemon that cannot be reached or an export that breaks off for
 * another reason is UNAVAILABLE, an export that is not a Docker image archive BAD_DATA.
 */
export async function deepCheck(docker: Docker, id: string, pool?: HashPool): Promise<DeepCheck> {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(id)?.[1];
  if (!hex) throw new VouchError('BAD_DATA', `not an image ID: ${id}`);
  let exported: ImageExport;
  try {
    exported = await exportImage(docker, id);
  } catch (error) {
    // dockerd < 25 assembles the export before it answers: the check fails as an HTTP error.
    const found = findDaemonError((error as Error).message ?? '');
    if (found) return mismatch('docker', found.text);
    throw dockerError(error, `cannot export image ${id} from Docker`, id);
  }
  const ownPool = pool ? undefined : await deepPool();
  let read: ExportRead;
  try {
    read = await readExport(exported, hex, pool ?? (ownPool as HashPool));
  } finally {
    (exported.body as NodeJS.ReadableStream & { destroy(): void }).destroy();
    await ownPool?.close();
  }
  if (read.kind === 'read') return compareExport(hex, read.contents);
  // dockerd 25+ streams as it assembles: its error comes as JSON after the partial tar.
  const said = streamErrorMessage(read.tail);
  const found = said === undefined ? undefined : findDaemonError(said);
  if (found) return mismatch(read.layout, found.text);
  if (read.failure instanceof VouchError) throw read.failure;
  throw new VouchError(
    'UNAVAILABLE',
    `docker save broke off: ${said ?? (read.failure as Error).message}`,
    { cause: read.failure },
  );
}

/** A pool for exports: hashing one layer while the next is read needs two workers. */
export function deepPool(): Promise<HashPool> {
  return plannedPool([], { minWorkers: 2 });
}

/** dockerd's own finding: nothing of the export was compared. */
function mismatch(layout: ExportLayout, text: string): DeepCheck {
  return { matches: false, layout, layers: [], mismatch: text };
}
