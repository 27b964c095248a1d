import { VouchError } from '../core/errors';

/**
 * The Home Assistant Supervisor, as an add-on sees it: `http://supervisor` with the
 * `SUPERVISOR_TOKEN` it is given (https://developers.home-assistant.io/docs/add-ons/communication#supervisor-api).
 * `VOUCH_SUPERVISOR_URL` names another address, for tests that serve a stand-in.
 */
export interface Supervisor {
  readonly url: string;
  readonly token: string;
}

/** The Supervisor, when running as an add-on (a token given); else undefined. */
export function supervisorFrom(env: NodeJS.ProcessEnv): Supervisor | undefined {
  const token = env.SUPERVISOR_TOKEN;
  if (!token) return undefined;
  return { url: env.VOUCH_SUPERVISOR_URL || 'http://supervisor', token };
}

const timeoutMs = 10_000;
const maxBodyBytes = 1024 * 1024;

/**
 * A GET of the Supervisor's API: its `data`, from `{"result": "ok", "data": …}`.
 * Any failure is UNAVAILABLE, saying `what` was asked for.
 */
export async function supervisorGet(
  supervisor: Supervisor,
  path: string,
  what: string,
): Promise<Record<string, unknown>> {
  try {
    const response = await fetch(`${supervisor.url}${path}`, {
      headers: { authorization: `Bearer ${supervisor.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const text = await response.text();
    if (text.length > maxBodyBytes) throw new Error(`an answer over ${maxBodyBytes} bytes`);
    const { data } = JSON.parse(text) as { data?: unknown };
    if (typeof data !== 'object' || data === null) throw new Error('an answer with no data');
    return data as Record<string, unknown>;
  } catch (error) {
    throw new VouchError(
      'UNAVAILABLE',
      `the Supervisor names no ${what}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
