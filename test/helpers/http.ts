import { type IncomingHttpHeaders, request } from 'node:http';

/** Where a request goes: a Unix socket, or a TCP host and port. */
export type Target =
  | { readonly socketPath: string }
  | { readonly host: string; readonly port: number; readonly localAddress?: string };

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One request on a connection of its own; `body` in two writes (chunked) with `chunked`. */
export function call(
  target: Target,
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string>; chunked?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { ...target, method, path, headers: options.headers, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    // After the answer, a server that stopped reading a body may reset the connection.
    req.on('error', reject);
    if (options.chunked && options.body !== undefined) {
      const half = Math.floor(options.body.length / 2);
      req.write(options.body.slice(0, half));
      req.end(options.body.slice(half));
    } else req.end(options.body);
  });
}
