import { describe } from 'vitest';
import { type Service, services } from '../../scripts/lib/services';

/**
 * A suite that needs a real service (scripts/lib/services.ts) fails when its binary is
 * missing; the only way to skip it is the service's VOUCH_SKIP_* variable, and the skip
 * reporter then says how many tests were skipped and why.
 */

/** The prefix of every suite that needs `service`; the skip reporter counts by it. */
export function serviceTag(service: Service): string {
  return `[needs ${services[service].binary}]`;
}

export function isSkipped(service: Service, env = process.env): boolean {
  return env[services[service].skipEnv] === '1';
}

/** `describe` for a suite that needs a real service, skipped only by its VOUCH_SKIP_* variable. */
export function describeWith(service: Service, name: string, body: () => void): void {
  (isSkipped(service) ? describe.skip : describe)(`${serviceTag(service)} ${name}`, body);
}
