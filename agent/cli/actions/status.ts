import { ExitCode } from '../../core/exit-codes';
import { safe } from '../../core/text';
import { formatUtcTime } from '../../core/time';
import { chooseMirrors, type DeviceStatus, deviceStatus, type MirrorChoice } from '../../device';
import type { Context } from '../context';

/** An age in the largest unit that still reads as a whole number: "90 s", "5 min", "3 h", "12 d". */
function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 2 * 86_400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86_400)} d`;
}

/** Where a plain `vouch sync` finds its mirrors (docs/usage.md "Device state"). */
function describeMirrors(choice: MirrorChoice, stateDir: string): string {
  if (choice.from === undefined) {
    const damaged = choice.damaged
      ? ` (${stateDir}/mirrors.json is damaged: ${choice.damaged})`
      : '';
    return safe`mirrors for vouch sync: none${damaged}; give vouch sync --mirror URL`;
  }
  const from =
    choice.from === 'config'
      ? 'from the configuration'
      : `remembered from vouch sync --mirror at ${formatUtcTime(choice.rememberedAt ?? 0)}`;
  return safe`mirrors for vouch sync: ${choice.mirrors.join(', ')} (${from})`;
}

function describe(status: DeviceStatus): string {
  const lines = [
    status.origin === null
      ? safe`no trust state in ${status.stateDir} (run vouch sync --root ROOT)`
      : safe`${status.origin}: size ${status.size}, root v${status.rootVersion}, ${status.records} records`,
    status.checkpointAgeSeconds === null
      ? 'checkpoint: no signed time'
      : `checkpoint: signed ${formatAge(status.checkpointAgeSeconds)} ago (${status.checkpointTime})`,
    `fresh: ${status.stale ? 'no, STALE' : 'yes'} (since ${status.freshSince ?? 'never'}, max age ${status.maxAgeSeconds} s; now ${status.now})`,
  ];
  const attempt = status.lastAttempt;
  if (attempt) {
    lines.push(
      safe`last attempt: ${new Date(attempt.at).toISOString()} ${attempt.ok ? 'ok' : `failed: ${attempt.error?.message}`}`,
    );
  }
  if (status.lastSuccess)
    lines.push(`last success: ${new Date(status.lastSuccess.at).toISOString()}`);
  for (const mirror of status.mirrors) {
    lines.push(
      safe`mirror ${mirror.url}: ${mirror.ok ? `ok, size ${mirror.size}` : `${mirror.error?.code}: ${mirror.error?.message}`}`,
    );
  }
  for (const fork of status.fork ?? []) {
    lines.push(
      safe`FORK detected ${new Date(fork.detectedAt).toISOString()} from ${fork.source}: ${fork.reason} (evidence in ${status.stateDir}/fork.json; clear with vouch fork clear)`,
    );
  }
  return lines.join('\n');
}

export async function status(ctx: Context) {
  const dir = ctx.config.stateDir;
  const device = await deviceStatus(dir, ctx.config.sync.maxAge);
  const choice = await chooseMirrors(dir, undefined, ctx.config.mirrors);
  const syncMirrors = {
    urls: choice.mirrors,
    from: choice.from ?? null,
    ...(choice.rememberedAt !== undefined && {
      rememberedAt: formatUtcTime(choice.rememberedAt),
    }),
    ...(choice.damaged !== undefined && { damaged: choice.damaged }),
  };
  return {
    exitCode: ExitCode.OK,
    data: { ...device, syncMirrors },
    text: `${describe(device)}\n${describeMirrors(choice, dir)}`,
  };
}
