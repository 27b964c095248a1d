import { createHash } from 'node:crypto';

/**
 * JSON records of the state directory that carry the SHA-256 of their other fields
 * (`recordSha256`, last), so that a flipped byte anywhere in them shows (an SD card's bad
 * block), where a flipped digit could otherwise still parse.
 */

const digestOf = (fields: object) =>
  createHash('sha256').update(JSON.stringify(fields)).digest('hex');

/** The file text of `fields`, sealed: indented, or on one line (`compact`: a cache of megabytes). */
export function sealRecord(fields: object, { compact = false } = {}): string {
  const sealed = { ...fields, recordSha256: digestOf(fields) };
  return `${JSON.stringify(sealed, null, compact ? undefined : 2)}\n`;
}

/** Whether parsed JSON is a record whose seal matches its other fields (in their order). */
export function sealIntact(json: unknown): boolean {
  if (typeof json !== 'object' || json === null || !('recordSha256' in json)) return false;
  const { recordSha256, ...fields } = json as { readonly recordSha256: unknown };
  return recordSha256 === digestOf(fields);
}
