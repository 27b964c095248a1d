import { VouchError } from './errors';
import { scopeMatches } from './root';

/**
 * Image names and the local image policy: which signer an image needs, whether a statement
 * is required, and what enforcement does with the outcome. Pure; the device side asks
 * Docker for the names and applies the result.
 */

/** What a verification outcome does to an image: stop it, log a warning, or nothing. */
export const enforceModes = ['enforce', 'warn', 'off'] as const;
export type EnforceMode = (typeof enforceModes)[number];

export interface ImageScope {
  /** Glob over normalized names (root.ts scopeMatches: `*` within a segment, `**` across). */
  readonly match: string;
  readonly signer?: string;
  readonly enforce: EnforceMode;
}

export interface ImageScopePolicy {
  readonly strict: boolean;
  readonly enforce: EnforceMode;
  readonly scopes: readonly ImageScope[];
}

export interface ImageRequirement {
  /** The glob of the rule that matched; null when none did. */
  readonly match: string | null;
  /** Only this signer's statements count; null: any signer the root authorizes for the name. */
  readonly signer: string | null;
  /** Whether an image without a statement (UNKNOWN) is a failure rather than allowed. */
  readonly required: boolean;
  readonly mode: EnforceMode;
}

const defaultDomain = 'docker.io';
const officialRepoPrefix = 'library/';
// distribution/reference grammar (reference/regexp.go): path components, tag, digest.
const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const domainPattern =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
/** Longest name the distribution grammar allows (reference.NameTotalLengthMax). */
const maxNameLength = 255;

/**
 * A Docker image reference in the fully qualified form the Engine and registries use
 * (distribution/reference ParseNormalizedNamed + TagNameOnly): a first path component
 * without `.` or `:` (and not `localhost`) is a Docker Hub repository, single-name Hub
 * repositories live under `library/`, and a name without tag or digest means `:latest`.
 * `ubuntu` → `docker.io/library/ubuntu:latest`; `ghcr.io/x/y@sha256:…` stays as it is.
 */
export function normalizeImageName(ref: string): string {
  const fail = (why: string): never => {
    throw new VouchError('USAGE', `not a Docker image reference (${why}): ${ref.slice(0, 300)}`);
  };
  if (ref.length === 0 || ref.length > 1024) fail('empty or too long');
  let rest = ref;
  let digest = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) fail('bad digest');
  }
  let tag = '';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) fail('bad tag');
  }
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let domain: string;
  let path: string;
  // reference/normalize.go splitDockerDomain: an uppercase first component is a domain too.
  if (
    slash >= 0 &&
    (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first)
  ) {
    domain = first === 'index.docker.io' ? defaultDomain : first;
    path = rest.slice(slash + 1);
  } else {
    domain = defaultDomain;
    path = rest;
  }
  if (!domainPattern.test(domain)) fail('bad registry host');
  if (domain === defaultDomain && !path.includes('/')) path = officialRepoPrefix + path;
  if (!path.split('/').every((component) => pathComponent.test(component))) {
    fail('bad repository name');
  }
  const name = `${domain}/${path}`;
  if (name.length > maxNameLength) fail('name too long');
  if (tag === '' && digest === '') tag = 'latest';
  return `${name}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
}

/**
 * What the local policy asks of an image known by `names` (normalized): the first scope
 * rule, in order, that matches any of its names decides; an image no rule matches needs no
 * particular signer, is required only in strict mode, and gets the default enforcement.
 */
export function requirementFor(
  names: readonly string[],
  policy: ImageScopePolicy,
): ImageRequirement {
  for (const scope of policy.scopes) {
    if (names.some((name) => scopeMatches(scope.match, name))) {
      return {
        match: scope.match,
        signer: scope.signer ?? null,
        required: true,
        mode: scope.enforce,
      };
    }
  }
  return { match: null, signer: null, required: policy.strict, mode: policy.enforce };
}
