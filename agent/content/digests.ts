import { VouchError } from '../core/errors';
import { merkleLeafSize } from '../core/statement';
import { plannedPool } from './pool';

/**
 * A file's two digests as a statement names them: its SHA-256 and its chunked digest
 * `merkle-sha256-1mib` (core/statement.ts), for `vouch sign --file PATH… --chunked`. Both
 * come from the hash pool, which spreads the chunked digest of one large file over every
 * worker; the device computes the same digests to look files up (device/verify/chunked.ts).
 */

/** Both digests of each file, on one pool. */
export async function fileDigests(
  paths: readonly string[],
): Promise<{ readonly sha256: string; readonly merkle: string; readonly size: number }[]> {
  const pool = await plannedPool(paths, { warm: Number.POSITIVE_INFINITY });
  try {
    return await Promise.all(
      paths.map(async (path) => {
        const [plain, chunked] = await Promise.all([
          pool.hash(path),
          pool.hashChunked(path, merkleLeafSize),
        ]);
        if (plain.size !== chunked.size) {
          throw new VouchError('BAD_DATA', `${path} changed while it was being hashed`);
        }
        return { sha256: plain.sha256, merkle: chunked.root, size: plain.size };
      }),
    );
  } finally {
    await pool.close();
  }
}
