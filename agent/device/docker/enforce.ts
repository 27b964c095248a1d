import type Docker from 'dockerode';
import type { EnforceMode, ImagePolicy } from '../../config';
import { asVouchError, type ErrorCode } from '../../core/errors';
import type { StatusName } from '../../core/status';
import type { Logger } from '../../logger';
import { type AllowEntry, allowEntryFor } from './allow';
import type { ImageResult } from './image';
import type { StopContainer } from './stop';

/**
 * Enforcement (docs/configuration.md and docs/security.md, "Enforcement"): what a verdict does to the
 * containers of its image, by the mode of the scope rule the image matched. `enforce`
 * stops containers of an UNTRUSTED or REVOKED image; `warn` reports them; `off` does
 * nothing. An image that could not be checked follows `images.couldNotCheck` and is never
 * treated as UNTRUSTED. UNSUPPORTED images, and UNKNOWN ones where a statement is required,
 * are reported, not stopped. An allow-list entry (allow.ts) overrides a stop or a warning,
 * and each time it does, that is logged.
 */

export interface Decision {
  /** The mode that applied: the scope rule's, or `couldNotCheck`. */
  readonly mode: EnforceMode;
  /** What the verdict calls for, before the allow-list. */
  readonly action: 'stop' | 'warn' | 'none';
  /** The allow-list entry that lets the image run anyway (only when action is not none). */
  readonly allowedBy: AllowEntry | null;
  readonly why: string;
}

export interface ContainerRef {
  readonly id: string;
  readonly name: string;
}

/** What enforcement did to one running container. */
export interface EnforcementAction {
  /**
   * stopped: it was stopped; warned: reported, left running; allowed: an allow-list entry
   * kept it running; failed: stopping it failed (see error).
   */
  readonly action: 'stopped' | 'warned' | 'allowed' | 'failed';
  readonly container: ContainerRef;
  /** The image ID. */
  readonly image: string;
  readonly names: readonly string[];
  readonly status: StatusName | null;
  readonly mode: EnforceMode;
  readonly reason: string;
  readonly allowedBy?: AllowEntry;
  readonly error?: { readonly code: ErrorCode; readonly message: string };
}

const actionOf: Record<EnforceMode, Decision['action']> = {
  enforce: 'stop',
  warn: 'warn',
  off: 'none',
};

export function decide(
  result: ImageResult,
  policy: Pick<ImagePolicy, 'couldNotCheck'>,
  allowList: readonly AllowEntry[],
): Decision {
  let mode = result.requirement.mode;
  let action: Decision['action'];
  let why: string;
  if (result.status === null) {
    mode = policy.couldNotCheck;
    action = actionOf[mode];
    why = result.reason;
  } else if (result.status === 'UNTRUSTED' || result.status === 'REVOKED') {
    action = actionOf[mode];
    why = `${result.status}: ${result.reason}`;
  } else if (
    result.status === 'UNSUPPORTED' ||
    (result.status === 'UNKNOWN' && result.requirement.required)
  ) {
    action = mode === 'off' ? 'none' : 'warn';
    why = `${result.status}: ${result.reason}`;
  } else {
    action = 'none';
    why = `${result.status}: ${result.reason}`;
  }
  const allowedBy =
    action === 'none'
      ? null
      : (allowEntryFor(allowList, {
          id: result.id,
          names: [...result.names, ...result.repoDigests],
        }) ?? null);
  return { mode, action, allowedBy, why };
}

/**
 * Applies `decision` to the running containers of `result`'s image, or to `container`
 * alone (the one whose start was just seen): stops (with `stop`: stop.ts), warns or logs
 * the override, and reports what it did.
 */
export async function enforce(
  docker: Docker,
  result: ImageResult,
  decision: Decision,
  options: {
    readonly logger: Logger;
    readonly stop: StopContainer;
    readonly container?: ContainerRef;
  },
): Promise<EnforcementAction[]> {
  const image = result.id;
  if (decision.action === 'none' || image === null) return [];
  const containers = options.container
    ? [options.container]
    : await runningContainersOf(docker, image);
  const { logger } = options;
  return Promise.all(
    containers.map(async (container): Promise<EnforcementAction> => {
      const base = {
        container,
        image,
        names: result.names,
        status: result.status,
        mode: decision.mode,
        reason: decision.why,
      };
      const fields = {
        image,
        name: result.names[0] ?? null,
        container: container.name,
        containerId: container.id,
        status: result.status,
        mode: decision.mode,
        reason: decision.why,
      };
      if (decision.allowedBy) {
        const entry = decision.allowedBy;
        logger.warn(
          { ...fields, allowedBy: entry.by, allowedAt: entry.at, allowReason: entry.reason },
          `override: container ${container.name} keeps running; its image is on the allow-list`,
        );
        return { ...base, action: 'allowed', allowedBy: entry };
      }
      if (decision.action === 'warn') {
        logger.warn(fields, `container ${container.name} runs an image that did not pass`);
        return { ...base, action: 'warned' };
      }
      try {
        await options.stop(container);
      } catch (error) {
        const failure = asVouchError(error);
        logger.error(
          { ...fields, code: failure.code },
          `cannot stop container ${container.name}: ${failure.message}`,
        );
        return {
          ...base,
          action: 'failed',
          error: { code: failure.code, message: failure.message },
        };
      }
      logger.warn(fields, `stopped container ${container.name}`);
      return { ...base, action: 'stopped' };
    }),
  );
}

/** Running (or restarting) containers whose image is exactly `image`. */
async function runningContainersOf(docker: Docker, image: string): Promise<ContainerRef[]> {
  const containers = await docker.listContainers({
    filters: { status: ['running', 'restarting'] },
  });
  return containers
    .filter((container) => container.ImageID === image)
    .map((container) => ({ id: container.Id, name: containerName(container.Names) }));
}

/** Docker's names start with `/`; the first is the one `docker ps` shows. */
export function containerName(names: readonly string[] | string | undefined): string {
  const first = Array.isArray(names) ? names[0] : names;
  return (first ?? '').replace(/^\//, '');
}
