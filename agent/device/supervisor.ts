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
const actionTimeoutMs = 5 * 60_000;
const maxBodyBytes = 1024 * 1024;

/**
 * A GET of the Supervisor's API: its `data`, from `{"result": "ok", "data": …}`.
 * Any failure is UNAVAILABLE, saying `what` was asked for.
 */
export function supervisorGet(
  supervisor: Supervisor,
  path: string,
  what: string,
): Promise<Record<string, unknown>> {
  return request(supervisor, 'GET', path, `the Supervisor names no ${what}`);
}

/**
 * A POST with no body, an action (`/addons/<slug>/stop`), answered once it is done: Core
 * may take minutes to stop. Failures as supervisorGet's, saying what the Supervisor could
 * not `do`.
 */
export async function supervisorPost(
  supervisor: Supervisor,
  path: string,
  doing: string,
): Promise<void> {
  await request(supervisor, 'POST', path, `the Supervisor could not ${doing}`, actionTimeoutMs);
}

async function request(
  supervisor: Supervisor,
  method: 'GET' | 'POST',
  path: string,
  failed: string,
  timeout = timeoutMs,
): Promise<Record<string, unknown>> {
  try {
    const response = await fetch(`${supervisor.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${supervisor.token}` },
      signal: AbortSignal.timeout(timeout),
    });
    const text = await response.text();
    if (text.length > maxBodyBytes) throw new Error(`an answer over ${maxBodyBytes} bytes`);
    if (!response.ok) throw new Error(`HTTP ${response.status}${errorMessage(text)}`);
    const body = JSON.parse(text) as { data?: unknown };
    if (typeof body.data !== 'object' || body.data === null) {
      throw new Error('an answer with no data');
    }
    return body.data as Record<string, unknown>;
  } catch (error) {
    throw new VouchError('UNAVAILABLE', `${failed}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The message of an error answer, `{"result": "error", "message": …}` (supervisor/api/utils.py). */
function errorMessage(text: string): string {
  try {
    const { message } = JSON.parse(text) as { message?: unknown };
    return typeof message === 'string' ? `: ${message.slice(0, 500)}` : '';
  } catch {
    return ''; // not JSON: a proxy's or the middleware's page
  }
}
