import { type AuthorizedStatement, authorizeEnvelope } from '../core/authorize';
import { VouchError } from '../core/errors';
import type { Root } from '../core/root';
import { type AppendResult, appendEntries } from './entries';
import { readConfig } from './logdir';
import { requireRootForLog } from './roots';

export interface AddResult extends AppendResult {
  readonly statements: readonly AuthorizedStatement[];
}

/**
 * Appends signed statements: the trust root must name this log (origin and key), and
 * every envelope must be signed by a key the root authorizes for its subjects at `now`
 * (see authorizeEnvelope). The entries are the envelope bytes exactly as given. One bad
 * envelope and nothing is appended.
 */
export async function addEnvelopes(
  dir: string,
  root: Root,
  envelopes: readonly Uint8Array[],
  now: Date,
): Promise<AddResult> {
  const config = await readConfig(dir);
  requireRootForLog(config, root);
  const statements = envelopes.map((envelope, i) => {
    try {
      return authorizeEnvelope(root, envelope, now);
    } catch (error) {
      if (!(error instanceof VouchError)) throw error;
      throw new VouchError(error.code, `envelope ${i + 1}: ${error.message}`, { cause: error });
    }
  });
  return { ...(await appendEntries(dir, envelopes)), statements };
}
