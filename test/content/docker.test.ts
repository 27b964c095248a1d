import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { dockerClient, imageSubjects } from '../../agent/content/docker';
import { VouchError } from '../../agent/core/errors';

describe('dockerClient', () => {
  const socketOf = (docker: Docker) =>
    (docker.modem as unknown as { socketPath?: string }).socketPath;

  it('honours DOCKER_HOST before the configured socket', async () => {
    expect(socketOf(await dockerClient({ DOCKER_HOST: 'unix:///tmp/d.sock' }, '/x.sock'))).toBe(
      '/tmp/d.sock',
    );
    const tcp = (await dockerClient({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).modem as unknown as {
      host: string;
      port: number;
    };
    expect([tcp.host, tcp.port]).toEqual(['127.0.0.1', 2375]);
  });

  it('uses the configured socket, else the default one', async () => {
    expect(socketOf(await dockerClient({}, '/run/other.sock'))).toBe('/run/other.sock');
    expect(['/var/run/docker.sock', '/run/docker.sock']).toContain(
      socketOf(await dockerClient({})),
    );
  });

  it('rejects a DOCKER_HOST it cannot use', async () => {
    await expect(dockerClient({ DOCKER_HOST: 'ssh://host' })).rejects.toMatchObject({
      code: 'USAGE',
    });
  });
});

describe('imageSubjects', () => {
  /** The Engine API answer for an image pulled from a registry (repo digests need a registry). */
  const fakeDocker = (inspect: object | Error) =>
    ({
      getImage: () => ({
        inspect: async () => {
          if (inspect instanceof Error) throw inspect;
          return inspect;
        },
      }),
    }) as unknown as Docker;
  const id = `sha256:${'1'.repeat(64)}`;
  const pulled = {
    Id: id,
    RepoTags: ['ghcr.io/home-assistant/core:2025.6.0', 'ghcr.io/home-assistant/core:stable'],
    RepoDigests: [
      `ghcr.io/home-assistant/core@sha256:${'2'.repeat(64)}`,
      `docker.io/homeassistant/core@sha256:${'3'.repeat(64)}`,
    ],
  };

  it('names the image ID by the reference and each repo digest by its repository', async () => {
    expect(await imageSubjects(fakeDocker(pulled), 'ghcr.io/home-assistant/core:stable')).toEqual([
      { name: 'ghcr.io/home-assistant/core:stable', sha256: '1'.repeat(64) },
      { name: 'ghcr.io/home-assistant/core', sha256: '2'.repeat(64) },
      { name: 'docker.io/homeassistant/core', sha256: '3'.repeat(64) },
    ]);
    expect((await imageSubjects(fakeDocker(pulled), id))[0]?.name).toBe(
      'ghcr.io/home-assistant/core:2025.6.0',
    );
    expect((await imageSubjects(fakeDocker(pulled), id, 'given'))[0]?.name).toBe('given');
  });

  it('maps Docker failures to typed errors', async () => {
    const missing = Object.assign(new Error('no such image'), { statusCode: 404 });
    await expect(imageSubjects(fakeDocker(missing), 'x')).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
    });
    const down = Object.assign(new Error('connect ENOENT /var/run/docker.sock'), {
      code: 'ENOENT',
    });
    await expect(imageSubjects(fakeDocker(down), 'x')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    await expect(imageSubjects(fakeDocker({ ...pulled, RepoTags: [] }), id)).rejects.toBeInstanceOf(
      VouchError,
    );
    await expect(
      imageSubjects(fakeDocker({ ...pulled, Id: 'sha512:00' }), 'x'),
    ).rejects.toMatchObject({ code: 'BAD_DATA' });
  });
});
