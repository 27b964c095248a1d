import { stat } from 'node:fs/promises';
import type { ChunkedDigest, Digest } from '../../content/pool';
import type { StatusOptions, Verdict } from '../../core/policy';
import { type DigestAlgorithm, merkleAlgorithm, merkleLeafSize } from '../../core/statement';
import { fsPath, ioError } from '../../files';
import type { TrustState } from '../store/state';
import { verdictFor } from '../store/verdict';

/**
 * The chunked digest `merkle-sha256-1mib` (core/statement.ts) on the device: computed on
 * every worker of the hash pool, so one large file (an OS update bundle) is hashed on all
 * cores, where a plain SHA-256 runs on one. The publisher computes it for `sign --chunked`
 * in agent/content/digests.ts.
 */

/** `vouch verify file` looks files from this size on up by their chunked digest first. */
export const chunkedFrom = 64 * 2 ** 20;

/**
 * Whether verifyFile may hash one of `paths` by its chunked digest, which runs on every
 * worker (so they should all boot with the pool). A file that cannot be read counts as
 * small: verifyFile reports it.
 */
export async function mayHashChunked(
  paths: readonly string[],
  choice: DigestChoice,
): Promise<boolean> {
  if (choice === 'chunked') return true;
  const sizes = await Promise.all(paths.map((path) => sizeOf(path).catch(() => 0)));
  return sizes.some((size) => size >= chunkedFrom);
}

/**
 * What verifyFile hashes with: the hash pool (content/pool/), or the agent's digest cache in
 * front of one (device/agent/digest-cache.ts).
 */
export interface Digester {
  hash(path: string, onProgress?: (bytes: number) => void): Promise<Digest>;
  hashChunked(
    path: string,
    leafSize: number,
    onProgress?: (bytes: number) => void,
  ): Promise<ChunkedDigest>;
}

/** How `vouch verify file` picks the digest: `auto` as described at verifyFile, or only the chunked one. */
export type DigestChoice = 'auto' | 'chunked';

export interface FileVerdict {
  /** The digest the verdict was looked up by. */
  readonly digest: DigestAlgorithm;
  /** Lowercase hex; null when not computed (the chunked digest decided). */
  readonly sha256: string | null;
  /** The merkle-sha256-1mib root; null when not computed. */
  readonly merkle: string | null;
  readonly size: number;
  readonly verdict: Verdict;
}

/**
 * Hashes one file and looks it up. With `auto`, a file of at least {@link chunkedFrom}
 * bytes on a device whose index holds chunked digests gets its chunked digest first (all
 * cores); when a statement decides for it, that is the verdict, else the plain SHA-256 is
 * computed and looked up as for any file. With `chunked`, only the chunked digest is.
 *
 * Looked up by its chunked root, a file also meets the statements about the SHA-256 that
 * the matching statements pair the root with (SubjectIndex.plainDigestsOf), so a
 * revocation that names only the SHA-256 still applies. The two kinds are never looked up
 * in each other's rows (store/subjects.ts).
 */
export async function verifyFile(
  digester: Digester,
  path: string,
  state: TrustState,
  now: number,
  options: {
    readonly choice: DigestChoice;
    readonly status: StatusOptions;
    readonly onProgress?: ((bytes: number) => void) | undefined;
  },
): Promise<FileVerdict> {
  let merkle: string | null = null;
  if (
    options.choice === 'chunked' ||
    (state.index.hasMerkle && (await sizeOf(path)) >= chunkedFrom)
  ) {
    const chunked = await digester.hashChunked(path, merkleLeafSize, options.onProgress);
    merkle = chunked.root;
    const verdict = merkleVerdict(state, merkle, now, options.status);
    // UNKNOWN leaves it to the plain digest; a statement's status or "could not check" does not.
    const decided = verdict.outcome !== 'status' || verdict.decidedBy !== undefined;
    if (decided || options.choice === 'chunked') {
      return { digest: merkleAlgorithm, sha256: null, merkle, size: chunked.size, verdict };
    }
  }
  const plain = await digester.hash(path, options.onProgress);
  const verdict = verdictFor(state, plain.sha256, now, options.status);
  return { digest: 'sha256', sha256: plain.sha256, merkle, size: plain.size, verdict };
}

/**
 * The verdict for a merkle-sha256-1mib root: the statements about it, and those about the
 * SHA-256 digests the same statements pair it with (see {@link verifyFile}).
 */
export function merkleVerdict(
  state: TrustState,
  merkle: string,
  now: number,
  options: StatusOptions,
): Verdict {
  const digests = [
    { algorithm: merkleAlgorithm, digest: merkle } as const,
    ...state.index.plainDigestsOf(merkle),
  ];
  return verdictFor(state, digests, now, options);
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(fsPath(path))).size;
  } catch (error) {
    throw ioError('read', path, error);
  }
}
