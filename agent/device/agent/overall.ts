import type { StatusName } from '../../core/status';
import type { Health } from './health';

/**
 * The device's trust status at a glance, one word for the status page, MQTT and Home
 * Assistant (an enum sensor's options), worst first:
 * - `violation`: an image is UNTRUSTED or REVOKED (what enforcement stops), whatever else
 *   is true: it is what a user must act on, and a stale state still knows a revocation;
 * - `error`: no trust state, or a service failed;
 * - `stale`: the trust state is older than sync.maxAge;
 * - `warning`: an image could not be checked, is UNSUPPORTED, or UNKNOWN where a statement
 *   is required (what enforcement reports), or a service is degraded (a fork among them);
 * - `ok`: trusted and fresh, nothing of the above.
 * Images only: files and digests verified through the API are the asker's answers.
 */
export type Overall = 'ok' | 'warning' | 'violation' | 'stale' | 'error';

/** Every value, the worst first (an enum sensor's options). */
export const overallStates: readonly Overall[] = ['violation', 'error', 'stale', 'warning', 'ok'];

/** The fields of `GET /v1/status` the rule reads. */
export interface OverallStatusInput {
  /** null: no trust state. */
  readonly origin: string | null;
  readonly stale: boolean;
  readonly services: Readonly<Record<string, Health>>;
}

/** The fields of each image's verdict (`GET /v1/verdicts` images) the rule reads. */
export interface OverallImageInput {
  readonly ref: string;
  readonly names: readonly string[];
  /** null: could not check. */
  readonly status: StatusName | null;
  readonly requirement: { readonly required: boolean };
}

interface OverallResult {
  readonly status: Overall;
  /** Why, one line each, the worst first; empty when `ok`. */
  readonly reasons: readonly string[];
}

/** What enforcement stops: an image (or any subject) that is one of these is a violation. */
export function isViolation(status: StatusName | null): boolean {
  return status === 'UNTRUSTED' || status === 'REVOKED';
}

export function overallStatus(
  status: OverallStatusInput,
  images: readonly OverallImageInput[],
): OverallResult {
  const named = (image: OverallImageInput) => image.names[0] ?? image.ref;
  const services = Object.entries(status.services);
  const found: Record<Overall, string[]> = {
    violation: images
      .filter((image) => isViolation(image.status))
      .map((image) => `${named(image)} is ${image.status}`),
    error: [
      ...(status.origin === null ? ['no trust state'] : []),
      ...services
        .filter(([, health]) => health.state === 'failed')
        .map(([name, health]) => `${name} failed: ${health.reason}`),
    ],
    stale: status.origin !== null && status.stale ? ['the trust state is stale'] : [],
    warning: [
      ...images
        .filter(
          (image) =>
            image.status === null ||
            image.status === 'UNSUPPORTED' ||
            (image.status === 'UNKNOWN' && image.requirement.required),
        )
        .map((image) =>
          image.status === null
            ? `${named(image)} could not be checked`
            : `${named(image)} is ${image.status}`,
        ),
      ...services
        .filter(([, health]) => health.state === 'degraded')
        .map(([name, health]) => `${name}: ${health.reason}`),
    ],
    ok: [],
  };
  return {
    status: overallStates.find((state) => found[state].length > 0) ?? 'ok',
    reasons: overallStates.flatMap((state) => found[state]),
  };
}
