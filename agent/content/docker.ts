import { existsSync } from 'node:fs';
import type Docker from 'dockerode';
import { parseImageId } from '../core/digest';
import { VouchError } from '../core/errors';
import type { Subject } from '../core/statement';

const defaultSocket = '/var/run/docker.sock';
/** Home Assistant OS has the Engine socket here, with no /var/run link to it. */
const haosSocket = '/run/docker.sock';

/**
 * A Docker Engine client: DOCKER_HOST when set (`unix://PATH` or `tcp://HOST:PORT`, as
 * every Docker client honours it), else `socket` (config `docker.socket`), else
 * /var/run/docker.sock, or /run/docker.sock when only that exists. dockerode is loaded
 * here, on first use: it is the heaviest dependency (a bundle of its own, docs/performance.md
 * "Start-up") and only the image commands need it.
 */
export async function dockerClient(env: NodeJS.ProcessEnv, socket?: string): Promise<Docker> {
  const { default: Docker } = await import('dockerode');
  const host = env.DOCKER_HOST;
  if (!host) {
    const path =
      socket ?? (!existsSync(defaultSocket) && existsSync(haosSocket) ? haosSocket : defaultSocket);
    return new Docker({ socketPath: path });
  }
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const tcp = /^tcp:\/\/([^:/]+):(\d+)\/?$/.exec(host);
  if (tcp) return new Docker({ host: tcp[1], port: Number(tcp[2]), protocol: 'http' });
  throw new VouchError('USAGE', `DOCKER_HOST ${host}: expected unix://PATH or tcp://HOST:PORT`);
}

/** Inspect an image; a missing one is IMAGE_NOT_FOUND, an unreachable daemon UNAVAILABLE. */
export async function inspectImage(docker: Docker, ref: string): Promise<Docker.ImageInspectInfo> {
  try {
    return await docker.getImage(ref).inspect();
  } catch (error) {
    throw dockerError(error, `cannot ask Docker about ${ref}`, ref);
  }
}

/**
 * A dockerode failure as a VouchError: a 404 is IMAGE_NOT_FOUND, anything else (no socket,
 * daemon down, 5xx) UNAVAILABLE.
 */
export function dockerError(error: unknown, what: string, ref: string): VouchError {
  if (error instanceof VouchError) return error;
  if ((error as { statusCode?: number }).statusCode === 404) {
    return new VouchError('IMAGE_NOT_FOUND', `Docker has no image ${ref}`, { cause: error });
  }
  return new VouchError('UNAVAILABLE', `${what}: ${(error as Error).message}`, { cause: error });
}

/** A failure to reach Docker at all as UNAVAILABLE: `cannot reach <what>: <why>`. */
export function unavailable(error: unknown, what: string): VouchError {
  if (error instanceof VouchError) return error;
  return new VouchError('UNAVAILABLE', `cannot reach ${what}: ${(error as Error).message}`, {
    cause: error,
  });
}

/**
 * The subjects that name a local image: its image ID (the SHA-256 of its config, which is
 * what the daemon runs) under `name` — else the reference as given, or its first tag when
 * given an ID — and each repo digest (the SHA-256 of a registry manifest) under its
 * repository name.
 */
export async function imageSubjects(
  docker: Docker,
  ref: string,
  name?: string,
): Promise<Subject[]> {
  const typedId = parseImageId(ref);
  const image = await inspectImage(docker, typedId?.ref ?? ref);
  const imageName = name ?? (typedId ? image.RepoTags?.[0] : ref);
  if (imageName === undefined) {
    throw new VouchError('USAGE', `image ${ref} has no tag to name it by; give --name`);
  }
  const subjects = [{ name: imageName, sha256: digestHex(image.Id, 'image ID') }];
  for (const repoDigest of image.RepoDigests ?? []) {
    const at = repoDigest.lastIndexOf('@');
    subjects.push({
      name: repoDigest.slice(0, at),
      sha256: digestHex(repoDigest.slice(at + 1), 'repo digest'),
    });
  }
  return subjects;
}

/** `sha256:<64 hex>` from Docker → the hex; BAD_DATA for anything else. */
export function digestHex(digest: string, what: string): string {
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!match?.[1]) throw new VouchError('BAD_DATA', `Docker gave an unexpected ${what} ${digest}`);
  return match[1];
}
