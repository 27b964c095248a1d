import { resolve } from 'node:path';
import { type HardwareProfile, type HashPlan, planHashing, readProfile } from '../../../hw';
import { HashPool } from '../../content/pool';
import { VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { safe } from '../../core/text';
import type { Context } from '../context';

interface HwOptions {
  readonly sysroot?: string;
  readonly measure?: boolean;
}

interface Measurement {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly seconds: number;
}

export async function hw(_ctx: Context, paths: string[], options: HwOptions) {
  if (options.measure && (options.sysroot !== undefined || paths.length === 0)) {
    throw new VouchError(
      'USAGE',
      '--measure hashes files of this machine: name them, without --sysroot',
    );
  }
  const root = resolve(options.sysroot ?? '/');
  const profile = await readProfile({ root, paths: paths.length > 0 ? paths : ['/'] });
  const plan = planHashing(profile);
  const measured = options.measure ? await measure(plan, paths) : undefined;
  return {
    exitCode: ExitCode.OK,
    data: { ...profile, plan, ...(measured && { measured }) },
    text: describe(profile, plan, measured),
  };
}

/** Hashes each file in turn with the plan's pool: what this board really does. */
async function measure(plan: HashPlan, paths: readonly string[]): Promise<Measurement[]> {
  const pool = new HashPool(plan);
  try {
    const results: Measurement[] = [];
    for (const path of paths) {
      const start = process.hrtime.bigint();
      const { sha256, size } = await pool.hash(path);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      results.push({ path, size, sha256, seconds });
    }
    return results;
  } finally {
    await pool.close();
  }
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function describe(
  profile: HardwareProfile,
  plan: HashPlan,
  measured: readonly Measurement[] | undefined,
): string {
  const rows: [string, string][] = [['board', profile.board ?? 'unknown']];
  const pi = profile.raspberryPi;
  if (pi) {
    const memory = pi.memory === null ? 'other' : `${pi.memory / GiB} GiB`;
    rows.push([
      '',
      `Raspberry Pi ${pi.type} rev ${pi.revision}, ${pi.processor}, ${memory}, ` +
        `made by ${pi.manufacturer} (revision code ${pi.code})`,
    ]);
  }
  const sha2 = profile.sha2 ? 'SHA-2 instructions' : 'no SHA-2 instructions';
  rows.push([
    'cpu',
    `${profile.cpu ?? 'unknown'}, ${profile.arch}, ${profile.cores} cores, ${sha2}`,
  ]);
  rows.push([
    'memory',
    `${(profile.memTotal / GiB).toFixed(1)} GiB total, ` +
      `${(profile.memAvailable / GiB).toFixed(1)} GiB available`,
  ]);
  for (const s of profile.storage) {
    const details = [s.device, s.mount && `mounted on ${s.mount}`].filter(Boolean).join(', ');
    rows.push(['storage', `${s.path}: ${s.class}${details ? ` (${details})` : ''}`]);
  }
  rows.push([
    'temperature',
    profile.temperature === null ? 'unknown' : `${profile.temperature} °C`,
  ]);
  rows.push(['throttling', throttling(profile)]);
  rows.push([
    'plan',
    `${plan.workers} worker${plan.workers === 1 ? '' : 's'}, ${plan.chunkSize / MiB} MiB chunks, ` +
      `${plan.inFlightBytes / MiB} MiB in flight`,
  ]);
  for (const reason of plan.reasons) rows.push(['', `- ${reason}`]);
  for (const m of measured ?? []) {
    rows.push([
      'measured',
      `${m.path}: ${(m.size / MiB).toFixed(1)} MiB in ${m.seconds.toFixed(2)} s, ` +
        `${(m.size / MiB / m.seconds).toFixed(0)} MiB/s, sha256 ${m.sha256}`,
    ]);
  }
  return rows.map(([label, value]) => safe`${label.padEnd(12)}${value}`).join('\n');
}

function throttling({ throttling: t }: HardwareProfile): string {
  if (t === null) return 'not reported (no Raspberry Pi firmware)';
  const now = t.now.length > 0 ? t.now.join(', ') : 'none';
  const since = t.sinceBoot.length > 0 ? t.sinceBoot.join(', ') : 'none';
  return `now: ${now}; since boot: ${since} (${t.raw})`;
}
