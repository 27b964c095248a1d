import { request } from 'node:http';
import { VouchError } from '../../core/errors';

/** An answer of the agent's API: the HTTP status and the body, parsed when it is JSON. */
export interface AgentAnswer {
  readonly status: number;
  /** The JSON value, or the text of another type (`/metrics`). */
  readonly body: unknown;
}

/** Largest answer read (bytes): a status or a verdict list is far smaller. */
const maxAnswerBytes = 16 * 2 ** 20;

/**
 * One request to a running agent over its API socket (`vouch agent status`). No agent
 * listening there is UNAVAILABLE, naming the socket and how to start one.
 */
export function agentRequest(
  socket: string,
  method: 'GET' | 'POST',
  path: string,
  { body, timeoutMs = 30_000 }: { body?: unknown; timeoutMs?: number } = {},
): Promise<AgentAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        method,
        path,
        timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxAnswerBytes) {
            req.destroy(
              new VouchError(
                'PAYLOAD_TOO_LARGE',
                `the agent's answer is over ${maxAnswerBytes} bytes`,
              ),
            );
          } else chunks.push(chunk);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (!res.headers['content-type']?.startsWith('application/json')) {
            resolve({ status: res.statusCode ?? 0, body: text });
            return;
          }
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            reject(
              new VouchError(
                'BAD_DATA',
                `the agent at ${socket} answered ${method} ${path} with no JSON`,
              ),
            );
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(
        new VouchError(
          'UNAVAILABLE',
          `the agent at ${socket} did not answer within ${timeoutMs / 1000} s`,
        ),
      ),
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof VouchError) return reject(error);
      const absent = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
      reject(
        new VouchError(
          'UNAVAILABLE',
          absent
            ? `no agent is listening on ${socket}: start one with vouch agent (or set api.socket)`
            : `cannot reach the agent on ${socket}: ${error.message}`,
          { cause: error },
        ),
      );
    });
    req.end(payload);
  });
}
