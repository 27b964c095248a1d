import { dockerClient } from '../../content/docker';
import { ExitCode, exitCodeOf } from '../../core/exit-codes';
import { safe } from '../../core/text';
import { supervisorFrom } from '../../device';
import {
  containerStopper,
  type EnforcementAction,
  ImageWatcher,
  type VerdictEvent,
} from '../../device/docker';
import type { Context } from '../context';
import { untilSignal } from './log';

interface WatchFlags {
  readonly once?: boolean;
}

function describeVerdict({ result, decision }: VerdictEvent): string {
  const outcome = result.status ?? 'COULD NOT CHECK';
  const image = result.names[0] ?? result.ref;
  const id = result.id === null || result.id === image ? '' : ` ${result.id}`;
  const why = result.error?.message ?? result.reason;
  const allowed = decision.allowedBy ? ', overridden by the allow-list' : '';
  const what =
    decision.action === 'none'
      ? ''
      : ` [${decision.mode}: ${decision.action === 'stop' ? 'stop' : 'report'}${allowed}]`;
  return safe`${outcome} ${image}${id}: ${why}${what}`;
}

function describeAction(action: EnforcementAction): string {
  const container = `container ${action.container.name} (${action.container.id.slice(0, 12)})`;
  const image = action.names[0] ?? action.image;
  const head = `${action.action.toUpperCase()} ${container} of ${image}`;
  if (action.allowedBy) {
    const entry = action.allowedBy;
    return safe`${head}: ${action.reason}; allowed by ${entry.by} at ${entry.at}: ${entry.reason}`;
  }
  return safe`${head}: ${action.error?.message ?? action.reason}`;
}

async function watcherFor(ctx: Context): Promise<ImageWatcher> {
  const docker = await dockerClient(ctx.io.env, ctx.config.docker.socket);
  return new ImageWatcher({
    docker,
    stop: containerStopper(docker, supervisorFrom(ctx.io.env)),
    stateDir: ctx.config.stateDir,
    policy: ctx.config.images,
    logger: await ctx.logger(),
  });
}

async function once(ctx: Context) {
  const { verdicts, actions } = await (await watcherFor(ctx)).checkOnce();
  const results = verdicts.map((verdict) => verdict.result);
  const exitCode = exitCodeOf(results);
  return {
    exitCode,
    data: {
      images: verdicts.map(({ result, decision }) => ({ ...result, decision })),
      actions,
      exitCode,
    },
    text: [...verdicts.map(describeVerdict), ...actions.map(describeAction)].join('\n'),
  };
}

/** Until SIGINT/SIGTERM: each new or changed verdict and each action as a line on stdout. */
async function follow(ctx: Context) {
  const watcher = await watcherFor(ctx);
  const line = (kind: 'verdict' | 'action', value: unknown, text: string) =>
    ctx.io.stdout(`${ctx.output === 'json' ? JSON.stringify({ [kind]: value }) : text}\n`);
  let actions = 0;
  watcher.on('verdict', (verdict) => {
    if (verdict.changed) {
      line(
        'verdict',
        {
          ...verdict.result,
          decision: verdict.decision,
          trigger: verdict.trigger,
          ...(verdict.container && { container: verdict.container }),
        },
        describeVerdict(verdict),
      );
    }
  });
  watcher.on('action', (action) => {
    actions++;
    line('action', action, describeAction(action));
  });
  // Listening before the first check, which may take a while with many images.
  const stopped = untilSignal();
  await watcher.start();
  const signal = await stopped;
  await watcher.stop();
  const images = [...watcher.latest.values()].map(({ result, decision }) => ({
    ...result,
    decision,
  }));
  return {
    exitCode: ExitCode.OK,
    data: { images, actions, stopped: signal },
    text: `stopped by ${signal}: ${images.length} images known, ${actions} enforcement actions`,
  };
}

export function watch(ctx: Context, flags: WatchFlags) {
  return flags.once ? once(ctx) : follow(ctx);
}
