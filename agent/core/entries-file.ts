import { splitEntries } from './tiles';

/**
 * The entries file (docs/formats.md "Device state directory"): a log's entries from 0, each
 * uint16 big-endian length-prefixed, one after another (entry bundles concatenated,
 * c2sp.org/tlog-tiles#log-entries), read as it comes from the disk, in chunks split
 * anywhere. The entries are split by the tile codec's one reader, {@link splitEntries}.
 */
export class EntriesFileReader {
  /** The start of an entry the next chunk completes: a copy, never a caller's chunk. */
  #pending = new Uint8Array(0);

  /** The entries `chunk` completes, in order: copies, which do not keep the chunk alive. */
  read(chunk: Uint8Array): Uint8Array[] {
    const bytes = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const { entries, end } = splitEntries(bytes);
    this.#pending = new Uint8Array(bytes.subarray(end));
    return entries.map((entry) => new Uint8Array(entry));
  }

  /** Whether what was read ends between two entries; false when it ends within one (cut short). */
  get complete(): boolean {
    return this.#pending.length === 0;
  }
}
