import type Docker from 'dockerode';
import { grow, signerId, type World } from './device';
import { signedStatement } from './trust';

/**
 * Images and containers for the Docker tests: statements about an image's ID, and a
 * container of a `FROM scratch` image holding helpers/pause.ts's program at /pause, run
 * with no network. Its stop signal is SIGKILL: the program (PID 1) has no SIGTERM handler,
 * so every stop would wait out Docker's 10 s timeout.
 */

/** A statement about image `tag` with ID `id`, appended to the world's log and published. */
export async function signImage(
  world: World,
  tag: string,
  id: string,
  status: 'trusted' | 'revoked',
  seconds: number,
): Promise<void> {
  const envelope = signedStatement(world.signer, {
    signer: signerId,
    subjects: [{ name: tag, sha256: id.slice('sha256:'.length) }],
    status,
    issuedAt: new Date(Date.UTC(2025, 5, 1) + seconds * 1000),
  });
  await grow(world, 0, [envelope]);
}

export async function runPaused(
  docker: Docker,
  image: string,
  name: string,
): Promise<Docker.Container> {
  const container = await docker.createContainer({
    Image: image,
    name,
    Cmd: ['/pause'],
    StopSignal: 'SIGKILL',
    HostConfig: { NetworkMode: 'none' },
  });
  await container.start();
  return container;
}
