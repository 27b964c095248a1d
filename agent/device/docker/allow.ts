import { join } from 'node:path';
import { z } from 'zod';
import { VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { makeDirectory, readFileCapped, writeFileDurably } from '../../files';
import { withLock } from '../../lock';
import { stateFiles } from '../store/state';

/**
 * The allow-list (`vouch allow IMAGE --reason TEXT`): images an operator lets run whatever
 * their verdict, like the Supervisor's forced install. Enforcement never stops an allowed
 * image and logs the override each time it applies (enforce.ts). An entry names the exact
 * image ID, so a new image under the same tag is checked again; an entry by name only (made
 * when Docker could not resolve the name) covers whatever image carries that name.
 *
 * `allow.json` in the state directory, replaced durably (temp file, fsync, rename), under
 * its own lock so that two `vouch allow` runs do not lose each other's entries.
 */

export interface AllowEntry {
  /** The image ID (`sha256:<64 hex>`) the override is for; null for an entry by name. */
  readonly image: string | null;
  /** The normalized name it was given by (informative beside an ID). */
  readonly name: string | null;
  readonly reason: string;
  /** When it was made (RFC 3339 UTC). */
  readonly at: string;
  /** Who made it: the OS user name. */
  readonly by: string;
}

/** What `vouch allow` or `--remove` names: an image ID, a name, or both. */
export interface AllowTarget {
  readonly image: string | null;
  readonly name: string | null;
}

/** Like a statement's reason (docs/formats.md "Statement"). */
export const maxReasonLength = 4096;
const maxAllowBytes = 4 * 1024 * 1024;

const entrySchema = z.strictObject({
  image: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/)
    .nullable(),
  name: z.string().min(1).max(1024).nullable(),
  reason: z.string().min(1).max(maxReasonLength),
  at: z.string().max(64),
  by: z.string().max(256),
});

const fileSchema = z.strictObject({
  format: z.literal('vouch-allow/v1'),
  entries: z
    .array(entrySchema.refine((entry) => entry.image !== null || entry.name !== null))
    .max(10_000),
});

export async function readAllowList(stateDir: string): Promise<readonly AllowEntry[]> {
  const path = join(stateDir, stateFiles.allow);
  const bytes = await readFileCapped(path, maxAllowBytes, 'allow-list');
  if (bytes === undefined) return [];
  const parsed = fileSchema.safeParse(parseJson(bytes, 'STATE_INVALID', path));
  if (!parsed.success) {
    throw new VouchError('STATE_INVALID', `${path}: ${describeIssues(parsed.error)}`);
  }
  return parsed.data.entries;
}

/** Adds `entry`, replacing any entry for the same target; returns those it replaced. */
export function addAllowEntry(stateDir: string, entry: AllowEntry): Promise<AllowEntry[]> {
  return updateAllowList(stateDir, (entries) => {
    const replaced = entries.filter((old) => sameTarget(old, entry));
    return { entries: [...entries.filter((old) => !replaced.includes(old)), entry], replaced };
  });
}

/**
 * Removes the entries for `target`: those for its image ID, and those made by its name.
 * Returns them; ALLOW_NOT_FOUND when there were none.
 */
export async function removeAllowEntries(
  stateDir: string,
  target: AllowTarget,
): Promise<AllowEntry[]> {
  const removed = await updateAllowList(stateDir, (entries) => {
    const matching = entries.filter(
      (entry) =>
        (target.image !== null && entry.image === target.image) ||
        (target.name !== null && entry.name === target.name),
    );
    return { entries: entries.filter((entry) => !matching.includes(entry)), replaced: matching };
  });
  if (removed.length === 0) {
    throw new VouchError(
      'ALLOW_NOT_FOUND',
      `the allow-list has no entry for ${target.image ?? target.name}`,
    );
  }
  return removed;
}

/** The entry that lets this image run: one for its ID, else one for any of its names. */
export function allowEntryFor(
  entries: readonly AllowEntry[],
  image: { readonly id: string | null; readonly names: readonly string[] },
): AllowEntry | undefined {
  return (
    entries.find((entry) => entry.image !== null && entry.image === image.id) ??
    entries.find(
      (entry) => entry.image === null && entry.name !== null && image.names.includes(entry.name),
    )
  );
}

function sameTarget(a: AllowTarget, b: AllowTarget): boolean {
  return a.image !== null || b.image !== null ? a.image === b.image : a.name === b.name;
}

async function updateAllowList(
  stateDir: string,
  change: (entries: readonly AllowEntry[]) => { entries: AllowEntry[]; replaced: AllowEntry[] },
): Promise<AllowEntry[]> {
  await makeDirectory(stateDir);
  return withLock(
    join(stateDir, stateFiles.allowLock),
    { code: 'STATE_LOCKED', waitMs: 10_000 },
    async () => {
      const { entries, replaced } = change(await readAllowList(stateDir));
      const file: z.input<typeof fileSchema> = { format: 'vouch-allow/v1', entries };
      await writeFileDurably(
        join(stateDir, stateFiles.allow),
        `${JSON.stringify(file, null, 2)}\n`,
      );
      return replaced;
    },
  );
}
