import { VouchError } from '../../core/errors';
import { rootVersionOfPath } from '../../core/layout';
import {
  checkpointName,
  manifestName,
  maxCheckpointBytes,
  maxManifestBytes,
  maxRootBytes,
  parseManifest,
  snapshotInvalid,
} from '../../core/snapshot-format';
import { ioError, openExistingFile } from '../../files';
import type { Logger } from '../../logger';
import {
  type Applied,
  applyEntries,
  type Context,
  checkAgainstAnchor,
  commitUnchanged,
  type Incoming,
  updateRoots,
} from './apply';
import { notATar, SnapshotReader } from './snapshot-reader';
import { type Repaired, restoreRoots, trustOf, verifyCheckpointFrom, withState } from './sync';

/**
 * `vouch snapshot import` (core/snapshot-format.ts): the snapshot read as one stream, in
 * order, with a cap on each member and on the file, and applied exactly like a sync:
 * nothing in it is trusted before it verifies.
 */

/** Verifies the snapshot `options.file` fully and applies it to the state like a sync. */
export async function importSnapshot(options: {
  readonly file: string;
  readonly stateDir: string;
  readonly rootPath?: string | undefined;
  readonly maxBytes: number;
  readonly maxBundleBytes: number;
  readonly logger: Logger;
  readonly clock?: () => number;
}): Promise<Repaired<Applied & { readonly source: string }>> {
  // A regular file only: a FIFO would block the read, a device never end.
  const file = await openExistingFile(options.file, 'snapshot');
  const info = await file.stat().catch(async (error) => {
    await file.close();
    throw ioError('read snapshot', options.file, error);
  });
  const refusal =
    info.size > options.maxBytes
      ? new VouchError(
          'PAYLOAD_TOO_LARGE',
          `snapshot ${options.file} is over ${options.maxBytes} bytes`,
        )
      : await notATar(file, options.file, info.size);
  if (refusal) {
    await file.close();
    throw refusal;
  }
  return withState(options, 'import', options.file, [], async (local, now) => {
    // Root files the state lost may come back from the snapshot's own, read below.
    let trust =
      local && local.lostRoots.length > 0 ? undefined : await trustOf(local, options.rootPath);
    const ctx: Context = {
      dir: options.stateDir,
      source: options.file,
      now,
      logger: options.logger,
    };
    const reader = new SnapshotReader(file, options.file, info.size);
    try {
      const manifest = await reader.member(manifestName, maxManifestBytes);
      const declared = parseManifest(manifest);
      const noteBytes = await reader.member(checkpointName, maxCheckpointBytes);
      const roots = new Map<number, Uint8Array>();
      for (;;) {
        const name = await reader.peek();
        const version = rootVersionOfPath(name ?? '');
        if (version === undefined) break;
        roots.set(version, await reader.member(name as string, maxRootBytes));
      }
      trust ??= await trustOf(
        local && (await restoreRoots(ctx, local, async (version) => roots.get(version))),
        options.rootPath,
      );
      const { root, newRoots } = await updateRoots(ctx, trust, async (v) => roots.get(v));
      const checkpoint = verifyCheckpointFrom(`the snapshot ${options.file}`, noteBytes, root);
      const { size, origin } = checkpoint.checkpoint;
      if (declared.size !== size || declared.origin !== origin) {
        throw snapshotInvalid(`${manifestName} does not describe its checkpoint`);
      }
      const incoming: Incoming = {
        root,
        newRoots,
        checkpoint,
        note: Buffer.from(noteBytes).toString('utf8'),
      };
      await checkAgainstAnchor(ctx, trust.anchor, incoming);
      const applied =
        size === trust.held.size
          ? await commitUnchanged(ctx, trust, incoming)
          : await applyEntries(
              ctx,
              trust,
              incoming,
              reader.bundles(size, options.maxBundleBytes),
              0,
              () => {
                throw new VouchError(
                  'TILE_INVALID',
                  `${options.file}: the entries do not give the checkpoint's root`,
                );
              },
            );
      return { ...applied, source: options.file };
    } finally {
      reader.close();
    }
  }).finally(() => file.close());
}
