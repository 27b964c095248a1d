import { VouchError } from './errors';

/**
 * Where a log mirror is (docs/usage.md "Device state"): a static tlog-tiles directory served over
 * http(s)://, or on a file system (file://: a USB stick, a publisher's public/ directory).
 * One rule for the configuration, `--mirror` and the mirrors a device remembers.
 */
export const mirrorUrlRule = 'an http://, https:// or file:// URL';

export function isMirrorUrl(text: string): boolean {
  return text.length <= 2048 && /^(https?|file):\/\/./.test(text) && URL.canParse(text);
}

/** `--mirror` values, each a mirror URL, else a usage error naming the first that is not. */
export function requireMirrorUrls(urls: readonly string[]): void {
  const bad = urls.find((url) => !isMirrorUrl(url));
  if (bad !== undefined)
    throw new VouchError('USAGE', `--mirror ${bad}: expected ${mirrorUrlRule}`);
}
