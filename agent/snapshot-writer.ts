import { createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';
import { parseCheckpoint } from './core/checkpoint';
import { VouchError } from './core/errors';
import { rootPath } from './core/layout';
import { parseNote } from './core/note';
import { checkpointName, encodeManifest, manifestName } from './core/snapshot-format';
import { entryBundlePath, type TileId } from './core/tiles';
import { fsPath, requireReplaceable, syncDirectory, writeFailure } from './files';

/**
 * Writes a snapshot file (core/snapshot-format.ts) from what a device's state or a
 * publisher's log holds (device/sync/snapshot-export.ts, ledger/snapshot.ts): its members in
 * order, into a temp file beside the output, fsynced and renamed into place. Over its cap
 * the file is refused and nothing is left behind.
 */

/** What a snapshot is made from: its checkpoint note, roots and entry bundles. */
export interface SnapshotSource {
  readonly note: Uint8Array;
  /** The root chain, ascending. */
  readonly roots: readonly { readonly version: number; readonly bytes: Uint8Array }[];
  /** The entry bundles of the tree of `size` (the checkpoint's), from 0, in order. */
  bundles(size: number): AsyncIterable<{ readonly tile: TileId; readonly bytes: Uint8Array }>;
}

export interface ExportResult {
  readonly out: string;
  readonly origin: string;
  readonly size: number;
  readonly roots: number;
  readonly bytes: number;
}

/** Writes the snapshot of `source` to `out`, of at most `maxBytes`. */
export async function writeSnapshot(
  out: string,
  source: SnapshotSource,
  maxBytes: number,
): Promise<ExportResult> {
  const note = parseNote(source.note);
  const { origin, size } = parseCheckpoint(note.text);
  await requireReplaceable(out);
  const temp = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
  const tar = pack();
  let bytes = 0;
  const written = pipeline(
    tar,
    async function* (chunks: AsyncIterable<unknown>) {
      for await (const chunk of chunks) {
        bytes += (chunk as Buffer).length;
        if (bytes > maxBytes) {
          throw new VouchError('PAYLOAD_TOO_LARGE', `snapshot is over ${maxBytes} bytes`);
        }
        yield chunk;
      }
    },
    createWriteStream(fsPath(temp), { flags: 'wx', mode: 0o644 }),
  );
  written.catch(() => {});
  const add = (name: string, data: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      tar.entry(
        { name, size: data.length, mode: 0o644, mtime: new Date(0) },
        Buffer.from(data),
        (error) => (error ? reject(error) : resolve()),
      );
    });
  try {
    await add(manifestName, encodeManifest({ origin, size }));
    await add(checkpointName, source.note);
    for (const root of source.roots) await add(rootPath(root.version), root.bytes);
    for await (const { tile, bytes: bundle } of source.bundles(size)) {
      await add(entryBundlePath(tile), bundle);
    }
    tar.finalize();
    await written;
    const handle = await open(fsPath(temp), 'r');
    await handle.sync();
    await handle.close();
    await rename(fsPath(temp), fsPath(out));
    await syncDirectory(dirname(out));
  } catch (error) {
    tar.destroy();
    // A tar entry refused because the output failed ("already finalized or destroyed")
    // says nothing: the output's own error (no directory, disk full) is the cause.
    const failure =
      error instanceof VouchError
        ? error
        : await written.then(
            () => error,
            (cause) => cause,
          );
    await unlink(fsPath(temp)).catch(() => {});
    if (failure instanceof VouchError) throw failure;
    throw await writeFailure(out, failure);
  }
  return { out, origin, size, roots: source.roots.length, bytes };
}
