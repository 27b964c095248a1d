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
  /** A DSSE envelope that is not well-formed JSON of the DSSE v1 shape, or bad base64. */
  ENVELOPE_INVALID: 'data',
  /** A payload (or the file holding it) over its size cap. */
  PAYLOAD_TOO_LARGE: 'data',
  /** A DSSE payloadType other than the one the reader expects. */
  PAYLOAD_TYPE_UNKNOWN: 'data',
  /** The same signature twice in one envelope. */
  SIGNATURE_DUPLICATE: 'data',
  /** Fewer valid signatures by the given keys than required. */
  SIGNATURE_INVALID: 'data',
  /** A payload that is not an in-toto Statement v1 with a urn:vouch:status:v1 predicate. */
  STATEMENT_INVALID: 'data',
  /** A trust root document that is malformed or inconsistent. */
  ROOT_INVALID: 'data',
  /** A root not signed by a threshold of its own root keys. */
  ROOT_THRESHOLD: 'data',
  /** A new root not signed by a threshold of the trusted (previous) root's keys. */
  ROOT_PREVIOUS_THRESHOLD: 'data',
  /** `root sign` with a key that is not a root key of the root (nor of `--trusted`, the previous one). */
  ROOT_KEY_UNKNOWN: 'data',
  /** A root whose version is not above the trusted one. */
  ROOT_ROLLBACK: 'data',
  /** A root whose version is more than one above the trusted one. */
  ROOT_VERSION_SKIP: 'data',
  /** A root past its expiry time. */
  ROOT_EXPIRED: 'data',
  /** A statement by a signer the trust root does not list. */
  SIGNER_UNKNOWN: 'data',
  /** A statement whose signer ID is not the owner of the key that signed it. */
  SIGNER_MISMATCH: 'data',
  /** A statement about a name outside its signer's scopes. */
  SIGNER_OUT_OF_SCOPE: 'data',
  /** A statement outside its signer's validity window. */
  SIGNER_OUT_OF_WINDOW: 'data',
  /** A Docker image that the daemon does not have. */
  IMAGE_NOT_FOUND: 'data',
  /** `vouch allow --remove` of an image the allow-list has no entry for. */
  ALLOW_NOT_FOUND: 'usage',
  /** An output file that exists and is not ours to replace (a key, a new root). */
  FILE_EXISTS: 'usage',
  /** A signed note that is malformed (c2sp.org/signed-note). */
  NOTE_INVALID: 'data',
  /** A note with no valid signature by a known key, or a failing one (c2sp.org/signed-note). */
  NOTE_UNVERIFIED: 'data',
  /** A checkpoint body that is malformed or for another log (c2sp.org/tlog-checkpoint). */
  CHECKPOINT_INVALID: 'data',
  /** Fewer valid witness cosignatures than the quorum (c2sp.org/tlog-cosignature). */
  WITNESS_QUORUM: 'data',
  /** A tile, entry bundle or tile path that is malformed (c2sp.org/tlog-tiles). */
  TILE_INVALID: 'data',
  /** A Merkle inclusion or consistency proof that does not verify (RFC 9162). */
  PROOF_INVALID: 'data',
  /** An entry the log already holds. */
  ENTRY_DUPLICATE: 'data',
  /** A directory that is not a vouch log, or whose files contradict each other. */
  LOG_INVALID: 'data',
  /** Another process is changing the log directory. */
  LOG_LOCKED: 'unavailable',
  /** A log checkpoint smaller (or older) than the device's verified one (rollback). */
  LOG_ROLLBACK: 'data',
  /** Two checkpoints signed by the log key that cannot both be true (fork, split view). */
  LOG_FORK: 'data',
  /** The device has no trusted root yet and none was given (`--root` or `root` in config). */
  NO_TRUST_ROOT: 'usage',
  /** The device has no trust state yet (never synced): nothing can be checked. */
  NO_TRUST_STATE: 'unavailable',
  /** The trust state cannot answer now (its root has expired): sync, then ask again. */
  CANNOT_CHECK: 'unavailable',
  /** The device state directory is damaged or inconsistent. */
  STATE_INVALID: 'data',
  /** Another process is syncing the device state. */
  STATE_LOCKED: 'unavailable',
  /** A snapshot file that is malformed (members, order, sizes). */
  SNAPSHOT_INVALID: 'data',
  /** A service or mirror could not be reached (EX_UNAVAILABLE). */
  UNAVAILABLE: 'unavailable',
  /** A container enforcement does not stop: the agent's own, or one the Supervisor restarts. */
  STOP_REFUSED: 'unavailable',
  /** A bug: something we did not expect (EX_SOFTWARE). */
  INTERNAL: 'internal',
  /** A hashing worker thread died (crash, out of memory) while it held a job. */
  WORKER_FAILED: 'internal',
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
