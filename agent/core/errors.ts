/**
 * One error type for the whole tool. `code` is stable: the same strings appear in CLI
 * JSON output, API responses and MQTT attributes. Each code belongs to one kind, and the
 * kind decides the CLI exit status (sysexits.h), so adding a code is one line here.
 */
export const errorKinds = {
  /** Bad command line or configuration (EX_USAGE). */
  USAGE: 'usage',
  CONFIG_INVALID: 'usage',
  /** Input that is malformed or fails verification (EX_DATAERR). */
  BAD_DATA: 'data',
  /** A key that is malformed, of the wrong algorithm, or wrongly named. */
  BAD_KEY: 'data',
  /** A private key file that others can read. */
  KEY_PERMISSIONS: 'data',
  /** A service or mirror could not be reached (EX_UNAVAILABLE). */
  UNAVAILABLE: 'unavailable',
  /** A bug: something we did not expect (EX_SOFTWARE). */
  INTERNAL: 'internal',
  /** Reading or writing a file failed (EX_IOERR). */
  IO: 'io',
} as const satisfies Record<string, ErrorKind>;

export type ErrorKind = 'usage' | 'data' | 'unavailable' | 'internal' | 'io';
export type ErrorCode = keyof typeof errorKinds;

export class VouchError extends Error {
  override readonly name = 'VouchError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get kind(): ErrorKind {
    return errorKinds[this.code];
  }
}

/** Any thrown value as a VouchError; foreign errors become INTERNAL with the original as cause. */
export function asVouchError(error: unknown): VouchError {
  if (error instanceof VouchError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new VouchError('INTERNAL', message, { cause: error });
}
