import type Docker from 'dockerode';
import { VouchError } from '../core/errors';
import type { Subject } from '../core/statement';

const defaultSocket = '/var/run/docker.sock';

/**
 * A Docker Engine client for DOCKER_HOST (`unix://PATH` or `tcp://HOST:PORT`), else the
 * default socket. dockerode is loaded here, on first use: it is the heaviest dependency
 * (≈ 270 ms to load on the development machine) and only `sign --image` needs it.
 */
export async function dockerFromEnv(env: NodeJS.ProcessEnv): Promise<Docker> {
  const { default: Docker } = await import('dockerode');
  const host = env.DOCKER_HOST;
  if (!host) return new Docker({ socketPath: defaultSocket });
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const tcp = /^tcp:\/\/([^:/]+):(\d+)\/?$/.exec(host);
  if (tcp) return new Docker({ host: tcp[1], port: Number(tcp[2]), protocol: 'http' });
  throw new VouchError('USAGE', `DOCKER_HOST ${host}: expected unix://PATH or tcp://HOST:PORT`);
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
  let image: Docker.ImageInspectInfo;
  try {
    image = await docker.getImage(ref).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) {
      throw new VouchError('IMAGE_NOT_FOUND', `Docker has no image ${ref}`, { cause: error });
    }
    throw new VouchError(
      'UNAVAILABLE',
      `cannot ask Docker about ${ref}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const isId = /^(sha256:)?[0-9a-f]{12,64}$/.test(ref);
  const imageName = name ?? (isId ? image.RepoTags?.[0] : ref);
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

function digestHex(digest: string, what: string): string {
  const match = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!match?.[1]) throw new VouchError('BAD_DATA', `Docker gave an unexpected ${what} ${digest}`);
  return match[1];
}
