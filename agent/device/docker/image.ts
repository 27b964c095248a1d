import type Docker from 'dockerode';
import type { ImagePolicy } from '../../config';
import { digestHex, inspectImage } from '../../content/docker';
import type { HashPool } from '../../content/pool';
import { parseImageId } from '../../core/digest';
import { asVouchError, type ErrorCode, VouchError } from '../../core/errors';
import { type ImageRequirement, normalizeImageName, requirementFor } from '../../core/images';
import { scopeMatches } from '../../core/root';
import { atLeastAsBad, Status, type StatusName } from '../../core/status';
import type { TrustState } from '../store/state';
import { verdictFor } from '../store/verdict';
import { couldNotCheckOutcome, type IgnoredStatement, outcomeOf } from '../verify/verify';
import { type DeepCheck, deepCheck } from './deep';
import { describeTreeDifference, dockerStorage, type TreeCheck, treeCheck } from './tree';

/**
 * `vouch verify image`: a local Docker image's status from the device's trust state. The
 * image is known by its ID (the SHA-256 of its config, what the daemon runs) and its repo
 * digests (registry manifests); a statement about any of them counts. Its names choose the
 * local policy's scope rule, which may require one signer. With `deep`, the image's content
 * as Docker exports it is hashed and compared with the ID (deep.ts); with `tree`, each
 * layer's directory in Docker's storage is compared with the layer's file list (tree.ts).
 * Docker unreachable, an image Docker does not have, storage that cannot be read, or no
 * trust state: "could not check", never UNTRUSTED.
 */

export interface ImageVerifyOptions {
  readonly policy: ImagePolicy;
  /** Trusted time (ms) the policy is applied at (status.ts trustedNow). */
  readonly now: number;
  /** Also export the image and compare its content with its ID (deep.ts). */
  readonly deep?: boolean;
  /**
   * For `deep`: earlier deep checks that matched, by image ID (the agent's, kept across
   * restarts), so a known image is answered at once; the verdict is still computed from
   * the index every time. A mismatch is never kept: the next ask exports again, and an
   * image pulled again (same ID, new files) is judged by its new content.
   */
  readonly deepResults?: {
    get(id: string): DeepCheck | undefined;
    set(id: string, check: DeepCheck): void;
  };
  /** For `deep`: the pool to hash on; one sized by the hardware plan otherwise. */
  readonly pool?: HashPool;
  /** Also compare each layer's directory on disk with its file list (tree.ts; root only). */
  readonly tree?: boolean;
  /** Why `state` is undefined (a damaged state dir); NO_TRUST_STATE when not given. */
  readonly stateError?: VouchError;
}

export interface ImageResult {
  /** The reference as given. */
  readonly ref: string;
  /** `sha256:<hex>` image ID (config digest); null when the image could not be inspected. */
  readonly id: string | null;
  /** Normalized RepoTags. */
  readonly names: readonly string[];
  /** Normalized RepoDigests (`name@sha256:<hex>`). */
  readonly repoDigests: readonly string[];
  readonly requirement: ImageRequirement;
  /** null: could not check (then `error` says why). */
  readonly status: StatusName | null;
  /** The CAS status number. */
  readonly code: number | null;
  readonly signer: string | null;
  readonly logIndex: number | null;
  readonly issuedAt: string | null;
  readonly reason: string;
  readonly ignored: readonly IgnoredStatement[];
  readonly deep?: {
    readonly matches: boolean;
    readonly layout: 'docker' | 'oci';
    readonly layers: readonly { readonly diffId: string; readonly bytes: number }[];
  };
  readonly tree?: TreeCheck;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

export async function verifyImage(
  docker: Docker,
  state: TrustState | undefined,
  ref: string,
  options: ImageVerifyOptions,
): Promise<ImageResult> {
  const typedId = parseImageId(ref);
  const asGiven = typedId ? [] : namesOf([ref]);
  let inspected: Docker.ImageInspectInfo;
  try {
    inspected = await inspectImage(docker, typedId?.ref ?? ref);
  } catch (error) {
    const base = {
      ref,
      id: null,
      names: asGiven,
      repoDigests: [],
      requirement: requirementFor(asGiven, options.policy),
    };
    return couldNotCheck(base, asVouchError(error));
  }
  const names = namesOf(inspected.RepoTags ?? []);
  const repoDigests = namesOf(inspected.RepoDigests ?? []);
  const requirement = requirementFor([...names, ...repoDigests], options.policy);
  const base = { ref, id: inspected.Id, names, repoDigests, requirement };
  if (!state) {
    return couldNotCheck(
      base,
      options.stateError ??
        new VouchError(
          'NO_TRUST_STATE',
          'no trust state: run vouch sync --root ROOT (or snapshot import) first',
        ),
    );
  }
  let digests: string[];
  try {
    digests = [
      digestHex(inspected.Id, 'image ID'),
      ...repoDigests.map((name) => digestHex(name.slice(name.lastIndexOf('@') + 1), 'repo digest')),
    ];
  } catch (error) {
    return couldNotCheck(base, asVouchError(error));
  }
  // Each content check on its own, so that one's finding stands when the other cannot
  // run. The tree first: it fails fast (driver, root) where the export takes a while.
  const tree =
    options.tree &&
    (await attempt(async () =>
      treeCheck(await dockerStorage(docker), inspected.RootFS.Layers ?? []),
    ));
  const deep =
    options.deep && (await attempt(() => cachedDeepCheck(docker, inspected.Id, options)));
  // The name the signer must be authorized for: the one the scope rule matched.
  const matched = requirement.match;
  const name =
    matched === null
      ? (names[0] ?? repoDigests[0])
      : [...names, ...repoDigests].find((candidate) => scopeMatches(matched, candidate));
  const verdict = verdictFor(state, digests, options.now, {
    ...(requirement.signer !== null && { signer: requirement.signer }),
    ...(name !== undefined && { name }),
  });
  if (verdict.outcome === 'could-not-check') {
    return couldNotCheck(base, new VouchError('CANNOT_CHECK', verdict.reason));
  }
  const done = { deep: checked(deep), tree: checked(tree) };
  const checks = {
    ...(done.deep && {
      deep: { matches: done.deep.matches, layout: done.deep.layout, layers: done.deep.layers },
    }),
    ...(done.tree && { tree: done.tree }),
  };
  const outcome = outcomeOf(verdict);
  const findings = [
    done.deep && !done.deep.matches && `content does not match image ID: ${done.deep.mismatch}`,
    done.tree && describeTreeDifference(done.tree),
  ].filter((finding) => typeof finding === 'string');
  if (findings.length > 0) {
    const finding = findings.join('; ');
    // A statement about the ID that is as bad or worse (a revocation) still holds: the
    // worse of the two is the answer, with both reasons (docs/usage.md "Verifying files and digests").
    if (atLeastAsBad(verdict.status, 'UNTRUSTED')) {
      return { ...base, ...outcome, reason: `${outcome.reason}; ${finding}`, ...checks };
    }
    // What Docker holds (its export, or the files containers start from) is not the
    // image the ID, and so any statement, names.
    return {
      ...base,
      status: 'UNTRUSTED',
      code: Status.UNTRUSTED,
      signer: null,
      logIndex: null,
      issuedAt: null,
      reason: finding,
      ignored: outcome.ignored,
      ...checks,
    };
  }
  const failed = [tree, deep].find((check) => check instanceof VouchError);
  if (failed) return couldNotCheck(base, failed);
  return {
    ...base,
    ...outcome,
    reason:
      verdict.status === 'UNKNOWN' ? unknownReason(verdict.reason, requirement) : verdict.reason,
    ...checks,
  };
}

/** A content check's result, or why it could not run. */
async function attempt<T>(run: () => Promise<T>): Promise<T | VouchError> {
  try {
    return await run();
  } catch (error) {
    return asVouchError(error);
  }
}

function checked<T>(check: T | VouchError | false | undefined): T | undefined {
  return check === false || check instanceof VouchError ? undefined : check;
}

/** Says what the policy asks of an image nothing vouches for. */
function unknownReason(reason: string, requirement: ImageRequirement): string {
  if (requirement.match === null) {
    return `${reason}; no scope matches this image, so a statement is ${requirement.required ? 'required (strict mode)' : 'optional'}`;
  }
  const by = requirement.signer === null ? 'an authorized signer' : requirement.signer;
  return `${reason}; images matching ${requirement.match} require a statement by ${by}`;
}

/** Docker's names, normalized; `<none>` placeholders (and anything unparsable) left out. */
function namesOf(refs: readonly string[]): string[] {
  const names: string[] = [];
  for (const ref of refs) {
    if (ref.startsWith('<none>')) continue;
    try {
      names.push(normalizeImageName(ref));
    } catch {
      // A name Docker holds that is not a reference cannot match a scope either.
    }
  }
  return names;
}

function couldNotCheck(
  base: Pick<ImageResult, 'ref' | 'id' | 'names' | 'repoDigests' | 'requirement'>,
  error: VouchError,
): ImageResult {
  return { ...base, ...couldNotCheckOutcome(error) };
}

/** A deep check of image `id`, from `deepResults` when one matched before. */
async function cachedDeepCheck(
  docker: Docker,
  id: string,
  { deepResults, pool }: ImageVerifyOptions,
): Promise<DeepCheck> {
  const known = deepResults?.get(id);
  if (known) return known;
  const check = await deepCheck(docker, id, pool);
  if (check.matches) deepResults?.set(id, check);
  return check;
}
