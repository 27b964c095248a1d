/**
 * Where a log mirror is (README "Device state"): a static tlog-tiles directory served over
 * http(s)://, or on a file system (file://: a USB stick, a publisher's public/ directory).
 * One rule for the configuration, `--mirror` and the mirrors a device remembers.
 */
export const mirrorUrlRule = 'an http://, https:// or file:// URL';

export function isMirrorUrl(text: string): boolean {
  return text.length <= 2048 && /^(https?|file):\/\/./.test(text) && URL.canParse(text);
}
