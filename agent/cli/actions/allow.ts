import { userInfo } from 'node:os';
import { dockerClient, inspectImage } from '../../content/docker';
import { parseImageId } from '../../core/digest';
import { asVouchError, VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { normalizeImageName } from '../../core/images';
import { safe } from '../../core/text';
import { formatUtcTime } from '../../core/time';
import {
  type AllowEntry,
  type AllowTarget,
  addAllowEntry,
  maxReasonLength,
  readAllowList,
  removeAllowEntries,
} from '../../device/docker';
import type { Context } from '../context';

interface AllowFlags {
  readonly reason?: string;
  readonly list?: boolean;
  readonly remove?: string;
}

/**
 * The image `ref` names: a full ID as given; otherwise its ID from Docker when Docker has
 * it, else its normalized name alone (`resolved` false).
 */
async function resolveTarget(
  ctx: Context,
  ref: string,
): Promise<AllowTarget & { readonly resolved: boolean }> {
  const typedId = parseImageId(ref);
  if (typedId?.id) return { image: typedId.id, name: null, resolved: true };
  const name = typedId ? null : normalizeImageName(ref);
  try {
    const docker = await dockerClient(ctx.io.env, ctx.config.docker.socket);
    const image = await inspectImage(docker, typedId?.ref ?? ref);
    return { image: image.Id, name, resolved: true };
  } catch (error) {
    const failure = asVouchError(error);
    if (failure.code !== 'IMAGE_NOT_FOUND' && failure.code !== 'UNAVAILABLE') throw failure;
    if (name === null) {
      throw new VouchError('USAGE', `cannot resolve image ID ${ref}: ${failure.message}`, {
        cause: failure,
      });
    }
    (await ctx.logger()).debug({ code: failure.code }, failure.message);
    return { image: null, name, resolved: false };
  }
}

/** The OS user running the command, for the record. */
function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? 'unknown'}`;
  }
}

function describeEntry(entry: AllowEntry): string {
  const what =
    entry.image === null
      ? `${entry.name} (by name: any image under this name)`
      : `${entry.image}${entry.name === null ? '' : ` (${entry.name})`}`;
  return safe`${what}, by ${entry.by} at ${entry.at}: ${entry.reason}`;
}

async function allowImage(ctx: Context, ref: string, reason: string | undefined) {
  const text = reason?.trim();
  if (!text) {
    throw new VouchError('USAGE', '--reason TEXT is required: say why this image may run anyway');
  }
  if (text.length > maxReasonLength) {
    throw new VouchError('USAGE', `--reason is longer than ${maxReasonLength} characters`);
  }
  const target = await resolveTarget(ctx, ref);
  const entry: AllowEntry = {
    image: target.image,
    name: target.name,
    reason: text,
    at: formatUtcTime(Date.now()),
    by: currentUser(),
  };
  const replaced = await addAllowEntry(ctx.config.stateDir, entry);
  const logger = await ctx.logger();
  logger.warn(
    { image: entry.image, name: entry.name, reason: entry.reason, by: entry.by },
    'allow-list: this image may now run whatever its verdict',
  );
  if (!target.resolved) {
    logger.warn(
      { name: entry.name },
      'Docker does not have this image (or cannot be reached): the entry is by name and ' +
        'covers any image under it; allow by ID once the image is here',
    );
  }
  return {
    exitCode: ExitCode.OK,
    data: { added: entry, replaced },
    text: `allowed ${describeEntry(entry)}${replaced.length > 0 ? ` (replaces ${replaced.length} entry)` : ''}`,
  };
}

export async function allow(ctx: Context, image: string | undefined, flags: AllowFlags) {
  const modes = [image !== undefined, flags.list === true, flags.remove !== undefined];
  if (modes.filter(Boolean).length !== 1) {
    throw new VouchError('USAGE', 'give one of: IMAGE --reason TEXT, --list, --remove IMAGE');
  }
  if (flags.reason !== undefined && image === undefined) {
    throw new VouchError('USAGE', '--reason goes with an image to allow');
  }
  if (image !== undefined) return allowImage(ctx, image, flags.reason);
  if (flags.remove !== undefined) {
    const removed = await removeAllowEntries(
      ctx.config.stateDir,
      await resolveTarget(ctx, flags.remove),
    );
    (await ctx.logger()).warn(
      { removed: removed.map((entry) => entry.image ?? entry.name) },
      'allow-list: entries removed; enforcement applies to these images again',
    );
    return {
      exitCode: ExitCode.OK,
      data: { removed },
      text: removed.map((entry) => `removed ${describeEntry(entry)}`).join('\n'),
    };
  }
  const entries = await readAllowList(ctx.config.stateDir);
  return {
    exitCode: ExitCode.OK,
    data: { entries },
    text: entries.length === 0 ? 'the allow-list is empty' : entries.map(describeEntry).join('\n'),
  };
}
