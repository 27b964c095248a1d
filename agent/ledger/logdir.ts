import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { openCheckpoint, type SignedCheckpoint, signCheckpoint } from '../core/checkpoint';
import { VouchError } from '../core/errors';
import { describeIssues, parseJson } from '../core/json';
import {
  isValidKeyName,
  namePublicKey,
  type PrivateKey,
  type PublicKey,
  parseVerifierString,
  verifierString,
} from '../core/keys';
import { checkIndex, emptyRoot } from '../core/merkle';
import { formatNote, maxNoteSize } from '../core/note';
import {
  fsPath,
  ioError,
  makeDirectory,
  readExistingFile,
  readFileCapped,
  writeFileDurably,
} from '../files';
import { withLock } from '../lock';

/**
 * The log directory (documented in docs/formats.md, "Log directory"):
 *
 *   log.json         origin, the log's verifier string, the path of its private key
 *   state.json       the commit record: how many entries are committed
 *   hashes           their RFC 6962 leaf hashes, 32 bytes each (the duplicate index)
 *   entries/<N>      committed entries N·256 … N·256+255, uint16-length-prefixed
 *   lock             present while a command changes the log; holds its pid
 *   witnesses/       what each witness that ran `log cosign` here last cosigned
 *   public/          what is served: checkpoint, tile/<L>/<N>[.p/<W>], tile/entries/…
 *
 * Only public/ is served. Every file is written temp → fsync → rename → fsync dir.
 */
export const layout = {
  config: 'log.json',
  state: 'state.json',
  hashes: 'hashes',
  entries: 'entries',
  lock: 'lock',
  witnesses: 'witnesses',
  public: 'public',
  checkpoint: 'checkpoint',
} as const;

export interface LogConfig {
  readonly origin: string;
  /** The log's note key, named after the origin (c2sp.org/tlog-checkpoint §Signatures). */
  readonly key: PublicKey;
  /** Absolute path of the log's private key, read by `publish`. */
  readonly keyPath: string;
}

const maxSmallFile = 64 * 1024;
const configSchema = z.strictObject({
  origin: z.string().min(1).max(256),
  verifier: z.string().max(1024),
  key: z.string().min(1).max(4096),
});
const stateSchema = z.strictObject({ size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });

export function publicDir(dir: string): string {
  return join(dir, layout.public);
}

/** Creates a log in `dir` (absent or empty) and publishes its empty checkpoint, signed at `now`. */
export async function initLog(
  dir: string,
  origin: string,
  keyPath: string,
  key: PrivateKey,
  now: Date = new Date(),
): Promise<LogConfig> {
  if (!isValidKeyName(origin)) {
    throw new VouchError(
      'USAGE',
      `origin ${JSON.stringify(origin)} must be non-empty without spaces or '+' (e.g. example.com/log)`,
    );
  }
  const existing = await readdir(fsPath(dir)).catch((error: NodeJS.ErrnoException) => {
    // Not there (or a parent is not a directory: makeDirectory below says what it is).
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return [];
    throw ioError('read', dir, error);
  });
  if (existing.length > 0) throw new VouchError('FILE_EXISTS', `${dir} is not empty`);
  const config: LogConfig = {
    origin,
    key: namePublicKey(origin, key.raw),
    keyPath: resolve(keyPath),
  };
  await makeDirectory(join(dir, layout.entries));
  await makeDirectory(publicDir(dir));
  await writeFileDurably(join(dir, layout.hashes), new Uint8Array(0));
  await writeState(dir, 0);
  const note = signCheckpoint(
    { origin, size: 0, root: emptyRoot, extensions: [] },
    key,
    Math.floor(now.getTime() / 1000),
  );
  await writeFileDurably(join(publicDir(dir), layout.checkpoint), formatNote(note));
  // log.json last: a directory without it is not (yet) a log.
  const document = { origin, verifier: verifierString(config.key), key: config.keyPath };
  await writeFileDurably(join(dir, layout.config), `${JSON.stringify(document, null, 2)}\n`);
  return config;
}

export async function readConfig(dir: string): Promise<LogConfig> {
  const path = join(dir, layout.config);
  const bytes = await readFileCapped(path, maxSmallFile, 'log configuration');
  if (bytes === undefined)
    throw new VouchError('LOG_INVALID', `${dir} is not a vouch log (no ${layout.config})`);
  const result = configSchema.safeParse(parseJson(bytes, 'LOG_INVALID', path));
  if (!result.success)
    throw new VouchError('LOG_INVALID', `${path}: ${describeIssues(result.error)}`);
  const { origin, verifier, key: keyPath } = result.data;
  const key = parseVerifierString(verifier);
  if (key.name !== origin)
    throw new VouchError('LOG_INVALID', `${path}: key is not named ${origin}`);
  return { origin, key, keyPath };
}

/** The number of committed entries (state.json). */
export async function readState(dir: string): Promise<number> {
  const path = join(dir, layout.state);
  const result = stateSchema.safeParse(
    parseJson(
      await readExistingFile(path, maxSmallFile, 'log state', 'LOG_INVALID'),
      'LOG_INVALID',
      path,
    ),
  );
  if (!result.success)
    throw new VouchError('LOG_INVALID', `${path}: ${describeIssues(result.error)}`);
  return result.data.size;
}

/** The commit point of an append: after this rename, the entries are in the log. */
export async function writeState(dir: string, size: number): Promise<void> {
  checkIndex(size, 'log size');
  await writeFileDurably(join(dir, layout.state), `${JSON.stringify({ size })}\n`);
}

/** The published checkpoint, verified with the log key. */
export async function readCheckpoint(dir: string, config: LogConfig): Promise<SignedCheckpoint> {
  const path = join(publicDir(dir), layout.checkpoint);
  return openCheckpoint(
    await readExistingFile(path, maxNoteSize, 'checkpoint', 'LOG_INVALID'),
    config.key,
  );
}

/** The private key must be the log's own. */
export function requireLogKey(config: LogConfig, key: PrivateKey): void {
  if (Buffer.compare(Buffer.from(key.raw), Buffer.from(config.key.raw)) !== 0) {
    throw new VouchError('BAD_KEY', `${config.keyPath} is not the key of log ${config.origin}`);
  }
}

/** Runs `body` holding the log's lock. */
export function lockLog<T>(dir: string, body: () => Promise<T>): Promise<T> {
  return withLock(join(dir, layout.lock), { code: 'LOG_LOCKED' }, body);
}
