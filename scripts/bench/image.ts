/**
 * Container image benchmark (issue #7), run by scripts/bench.ts: `vouch verify image
 * --deep` on a ≈ 1 GiB image of 8 random 128 MiB layers (FROM scratch, a dockerd of our own
 * on the vfs driver), against `docker save IMAGE > /dev/null` of the same image in the same
 * run — both whole commands, start-up included. Target: ≤ 1.15× the docker save time.
 * (`docker save -o /dev/null` is no baseline: it streams nothing.)
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildScratchImage, startDockerd } from '../lib/dockerd';
import { type Figure, median, runSuite, scaled } from './harness';
import { benchLog, exec, syncedState, vouch } from './world';

const layers = 8;
const layerBytes = scaled(128, 8) * 2 ** 20;
const tag = 'bench.example.org/image:1';

export async function imageBench(): Promise<Figure[]> {
  const daemon = await startDockerd();
  const base = await mkdtemp(join(tmpdir(), 'vouch-bench-image-'));
  const previousHost = process.env.DOCKER_HOST;
  try {
    const id = await buildScratchImage(
      daemon.docker,
      tag,
      Array.from({ length: layers }, (_, i) => ({ [`layer-${i}.bin`]: randomBytes(layerBytes) })),
    );
    const log = await benchLog(base);
    await log.add([{ name: tag, sha256: id.slice('sha256:'.length) }]);
    const stateDir = await syncedState(base, log);
    // Both commands find the daemon as any Docker client does.
    process.env.DOCKER_HOST = daemon.dockerHost;
    // dockerd's own CPU while it saves: what it leaves of the cores to the consumer (docs/performance.md).
    const dockerdPid = (
      await readFile(join(dirname(daemon.socketPath), 'docker.pid'), 'utf8')
    ).trim();
    const dockerdCpu = async () => {
      const fields = (await readFile(`/proc/${dockerdPid}/stat`, 'utf8'))
        .split(') ')[1]
        ?.split(' ');
      // utime and stime (fields 14 and 15 of proc(5)), in clock ticks of 1/100 s.
      return (Number(fields?.[11]) + Number(fields?.[12])) / 100;
    };
    const saveCpu: number[] = [];
    const size = `${layers} × ${layerBytes / 2 ** 20} MiB layers`;
    const figures = await runSuite(group, {
      cases: [
        {
          name: `image of ${size}: docker save IMAGE > /dev/null`,
          run: async () => {
            const cpuBefore = await dockerdCpu();
            await exec('sh', ['-c', `docker save ${tag} > /dev/null`]);
            saveCpu.push((await dockerdCpu()) - cpuBefore);
          },
        },
        {
          name: 'vouch verify image --deep IMAGE (whole command)',
          run: async () => {
            const run = await vouch([
              ...['verify', 'image', '--deep', tag],
              ...['--state-dir', stateDir, '--log-level', 'error'],
            ]);
            if (run.code !== 0)
              throw new Error(`vouch verify image --deep exited with ${run.code}`);
          },
          target: { on: 'ratio', op: '≤', bound: 1.15, note: 'issue 7' },
        },
        {
          name: 'docker save IMAGE | openssl dgst -sha256',
          run: () => exec('sh', ['-c', `docker save ${tag} | openssl dgst -sha256 > /dev/null`]),
        },
      ],
    });
    figures.push({
      group,
      name: "dockerd's own CPU during docker save",
      value: median(saveCpu.slice(1)),
      unit: 's',
      runs: saveCpu.slice(1),
    });
    return figures;
  } finally {
    if (previousHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = previousHost;
    await daemon.stop();
    await rm(base, { recursive: true, force: true });
  }
}

const group = 'image';
