import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildScratchImage, type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import { describeWith } from '../../helpers/services';

async function bytes(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every regular file in every layer of `docker save` output: path → content. */
async function savedLayerFiles(daemon: Dockerd, tag: string): Promise<Map<string, string>> {
  const archive = await daemon.docker.getImage(tag).get();
  const files = new Map<string, string>();
  for await (const entry of archive.pipe(extract())) {
    const body = await bytes(entry);
    if (!entry.header.name.endsWith('layer.tar')) continue;
    for await (const inner of extract().end(body)) {
      const content = await bytes(inner);
      if (inner.header.type === 'file') files.set(inner.header.name, content.toString());
    }
  }
  return files;
}

describeWith('docker', 'startDockerd and buildScratchImage', () => {
  let daemon: Dockerd;
  beforeAll(async () => {
    daemon = await startDockerd();
  });
  afterAll(async () => {
    await daemon.stop();
  });

  it('answers the Engine API on its own socket with the vfs driver', async () => {
    expect(daemon.dockerHost).toBe(`unix://${daemon.socketPath}`);
    const info = await daemon.docker.info();
    expect(info.Driver).toBe('vfs');
    expect(info.DockerRootDir.startsWith('/tmp/vouch-dockerd-')).toBe(true);
  });

  it('builds an image FROM scratch holding exactly the given files', async () => {
    const id = await buildScratchImage(daemon.docker, 'vouch-test/hello:1', {
      'hello.txt': 'hello from vouch\n',
      'etc/app.conf': 'level=1\n',
    });
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const image = await daemon.docker.getImage('vouch-test/hello:1').inspect();
    expect(image.Id).toBe(id);
    expect(image.RepoTags).toEqual(['vouch-test/hello:1']);
    const files = await savedLayerFiles(daemon, 'vouch-test/hello:1');
    expect(Object.fromEntries(files)).toEqual({
      'hello.txt': 'hello from vouch\n',
      'etc/app.conf': 'level=1\n',
    });
  });

  it('is reachable by the docker CLI through DOCKER_HOST', async () => {
    await buildScratchImage(daemon.docker, 'vouch-test/cli:1', { a: 'a' });
    const { stdout } = await promisify(execFile)(
      'docker',
      ['image', 'inspect', '--format', '{{.Id}}', 'vouch-test/cli:1'],
      { env: { ...process.env, DOCKER_HOST: daemon.dockerHost } },
    );
    expect(stdout.trim()).toBe((await daemon.docker.getImage('vouch-test/cli:1').inspect()).Id);
  });

  it('stops: the socket no longer answers', async () => {
    const second = await startDockerd();
    await second.stop();
    await expect(second.docker.ping()).rejects.toThrow();
  });
});
