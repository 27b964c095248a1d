import type { z } from 'zod';
import { type ErrorCode, VouchError } from './errors';

/** One decoder for every call: without `stream`, each decode starts afresh. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 JSON from attacker-controlled bytes; every failure is a typed error. */
export function parseJson(bytes: Uint8Array, code: ErrorCode, what: string): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    throw new VouchError(code, `${what} is not valid UTF-8`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new VouchError(code, `${what} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** zod issues as `path: message; …`, so errors name the field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map(
      (issue) =>
        `${issue.path.length > 0 ? issue.path.join('.') : '(top level)'}: ${issue.message}`,
    )
    .join('; ');
}
