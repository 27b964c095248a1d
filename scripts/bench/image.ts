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
import { median, timed } from './harness';
import { benchLog, exec, syncedState, vouch } from './world';

const layers = 8;
const layerBytes = 128 * 2 ** 20;
const repeats = 7;
const tag = 'bench.example.org/image:1';

function line(name: string, seconds: number, ratio: number): void {
  console.log(`  ${name.padEnd(58)} ${seconds.toFixed(2).padStart(7)} s   ×${ratio.toFixed(2)}`);
}

export async function imageBench(): Promise<void> {
  const size = layers * layerBytes;
  console.log(
    `\nContainer images: verify image --deep vs docker save (${layers} × ${layerBytes / 2 ** 20} MiB ` +
      `random layers, ${(size / 2 ** 30).toFixed(1)} GiB, vfs; median of ${repeats})`,
  );
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
    const save = async () => {
      const cpuBefore = await dockerdCpu();
      const seconds = await timed(() => exec('sh', ['-c', `docker save ${tag} > /dev/null`]));
      saveCpu.push((await dockerdCpu()) - cpuBefore);
      return seconds;
    };
    const deep = async () => {
      const run = await vouch([
        ...['verify', 'image', '--deep', tag],
        ...['--state-dir', stateDir, '--log-level', 'error'],
      ]);
      if (run.code !== 0) throw new Error(`vouch verify image --deep exited with ${run.code}`);
      return run.seconds;
    };
    const hashed = () =>
      timed(() => exec('sh', ['-c', `docker save ${tag} | openssl dgst -sha256 > /dev/null`]));
    // Warm-up (page cache, bundle build), then the runs interleaved so that drift in the
    // machine's load hits each command alike.
    await save();
    await deep();
    const times = { save: [] as number[], deep: [] as number[], hashed: [] as number[] };
    for (let i = 0; i < repeats; i++) {
      times.save.push(await save());
      times.deep.push(await deep());
      times.hashed.push(await hashed());
    }
    const baseline = median(times.save);
    line(`docker save IMAGE > /dev/null (baseline)`, baseline, 1);
    line(
      'docker save IMAGE | openssl dgst -sha256',
      median(times.hashed),
      median(times.hashed) / baseline,
    );
    line(
      'node dist/vouch.cjs verify image --deep IMAGE',
      median(times.deep),
      median(times.deep) / baseline,
    );
    console.log(
      `  runs: docker save ${times.save.map((s) => s.toFixed(2)).join(' ')}; ` +
        `verify --deep ${times.deep.map((s) => s.toFixed(2)).join(' ')}`,
    );
    console.log(
      `  dockerd's own CPU during docker save: median ${median(saveCpu).toFixed(2)} s ` +
        `(per run: ${saveCpu.map((s) => s.toFixed(2)).join(' ')})`,
    );
  } finally {
    if (previousHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = previousHost;
    await daemon.stop();
    await rm(base, { recursive: true, force: true });
  }
}
