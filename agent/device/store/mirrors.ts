import { join } from 'node:path';
import { z } from 'zod';
import { asVouchError, VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { isMirrorUrl, mirrorUrlRule, requireMirrorUrls } from '../../core/mirror-url';
import { readFileCapped, writeFileDurably } from '../../files';
import { sealIntact, sealRecord } from './sealed';
import { stateFiles } from './state';

/**
 * The mirrors a device remembers (mirrors.json): those of the last `vouch sync --mirror …`
 * that succeeded, so that a plain `vouch sync` (and the daemon) finds the log again. Not
 * trust data: a mirror is untrusted by design, everything it serves is verified. A damaged
 * file is reported and otherwise ignored; the next sync with `--mirror` writes it again.
 */

const maxFileBytes = 256 * 1024;
const maxMirrors = 64;

const fields = {
  mirrors: z
    .array(z.string().refine(isMirrorUrl, `expected ${mirrorUrlRule}`))
    .min(1)
    .max(maxMirrors),
  /** When they were remembered (ms since the epoch, trusted time). */
  at: z.number().int().min(0),
};
const fileSchema = z.strictObject({ ...fields, recordSha256: z.string() });

export type RememberedMirrors = z.infer<z.ZodObject<typeof fields>>;

/** mirrors.json: undefined when absent, `{ damaged }` when it cannot be read as written. */
export async function readRememberedMirrors(
  dir: string,
): Promise<RememberedMirrors | { readonly damaged: string } | undefined> {
  const path = join(dir, stateFiles.mirrors);
  try {
    const bytes = await readFileCapped(path, maxFileBytes, 'remembered mirrors');
    if (bytes === undefined) return undefined;
    const json = parseJson(bytes, 'STATE_INVALID', stateFiles.mirrors);
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) return { damaged: describeIssues(parsed.error) };
    if (!sealIntact(json)) return { damaged: 'does not match its own digest (recordSha256)' };
    return { mirrors: parsed.data.mirrors, at: parsed.data.at };
  } catch (error) {
    const failure = asVouchError(error);
    if (failure.kind === 'io') throw error;
    return { damaged: failure.message };
  }
}

/** Remembers `mirrors` (after a sync from them succeeded); a file saying the same is kept. */
export async function rememberMirrors(
  dir: string,
  mirrors: readonly string[],
  at: number,
): Promise<void> {
  const known = await readRememberedMirrors(dir).catch(() => undefined);
  if (known && 'mirrors' in known && known.mirrors.join('\n') === mirrors.join('\n')) return;
  const record: RememberedMirrors = { mirrors: [...mirrors], at };
  await writeFileDurably(join(dir, stateFiles.mirrors), sealRecord(record));
}

/** Where the mirrors of a sync come from, in this order: flags, configuration, state dir. */
export type MirrorSource = 'flags' | 'config' | 'remembered';

export interface MirrorChoice {
  /** Empty when there are none. */
  readonly mirrors: readonly string[];
  readonly from: MirrorSource | undefined;
  /** When the remembered mirrors were remembered (ms). */
  readonly rememberedAt?: number;
  /** What is wrong with mirrors.json, when it is damaged. */
  readonly damaged?: string;
}

/**
 * The mirrors a sync uses: those given on the command line (which must be mirror URLs),
 * else the configuration's, else the remembered ones.
 */
export async function chooseMirrors(
  dir: string,
  given: readonly string[] | undefined,
  configured: readonly string[],
): Promise<MirrorChoice> {
  if (given && given.length > 0) {
    requireMirrorUrls(given);
    return { mirrors: given, from: 'flags' };
  }
  if (configured.length > 0) return { mirrors: configured, from: 'config' };
  const remembered = await readRememberedMirrors(dir);
  if (remembered === undefined) return { mirrors: [], from: undefined };
  if ('damaged' in remembered) {
    return { mirrors: [], from: undefined, damaged: remembered.damaged };
  }
  return { mirrors: remembered.mirrors, from: 'remembered', rememberedAt: remembered.at };
}

/** No mirror to sync from: what to give (and why the remembered ones are not used). */
export function noMirror(dir: string, damaged?: string): VouchError {
  const why = damaged ? ` (${join(dir, stateFiles.mirrors)} is damaged: ${damaged})` : '';
  return new VouchError(
    'USAGE',
    `no mirror: give --mirror URL or set mirrors in the configuration${why}`,
  );
}
