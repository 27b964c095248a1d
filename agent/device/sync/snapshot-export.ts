import { VouchError } from '../../core/errors';
import { encodeEntryBundle, fullWidth } from '../../core/tiles';
import { type ExportResult, type SnapshotSource, writeSnapshot } from '../../snapshot-writer';
import { loadState, verifiedEntries } from '../store/state';

/**
 * `vouch snapshot export` from the device's state (core/snapshot-format.ts): its checkpoint,
 * its root chain, and its entries, re-hashed on the way and checked against its verified root.
 */
export async function exportSnapshot(options: {
  readonly out: string;
  readonly stateDir: string;
  readonly maxBytes: number;
}): Promise<ExportResult> {
  return writeSnapshot(options.out, await stateSource(options.stateDir), options.maxBytes);
}

async function stateSource(stateDir: string): Promise<SnapshotSource> {
  const state = await loadState(stateDir);
  if (!state) throw new VouchError('NO_TRUST_ROOT', `${stateDir} holds no trust state to export`);
  return {
    note: new Uint8Array(Buffer.from(state.note, 'utf8')),
    roots: state.chain,
    async *bundles() {
      let batch: Uint8Array[] = [];
      let count = 0;
      const flush = () => {
        const tile = { level: 0, index: Math.floor((count - 1) / fullWidth), width: batch.length };
        const bundle = { tile, bytes: encodeEntryBundle(batch) };
        batch = [];
        return bundle;
      };
      // Re-hashed on the way: only entries that give the verified root are exported.
      for await (const entry of verifiedEntries(state)) {
        count++;
        batch.push(entry);
        if (batch.length === fullWidth) yield flush();
      }
      if (batch.length > 0) yield flush();
    },
  };
}
