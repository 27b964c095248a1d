import { describe, expect, it } from 'vitest';
import { parseDigest, parseImageId, parseSha256 } from '../../agent/core/digest';
import { expectVouchError } from '../helpers/errors';

const hex = 'ab'.repeat(32);
const upper = hex.toUpperCase();

describe('typed hex digests: one rule', () => {
  it('reads sha256:<hex> or the bare hex, in either case, as lowercase hex', () => {
    for (const text of [hex, upper, `sha256:${hex}`, `sha256:${upper}`, `SHA256:${upper}`]) {
      expect(parseSha256(text)).toBe(hex);
      expect(parseDigest(text)).toEqual({ algorithm: 'sha256', hex });
    }
    expect(parseDigest(`merkle-sha256-1mib:${upper}`)).toEqual({
      algorithm: 'merkle-sha256-1mib',
      hex,
    });
  });

  it('refuses anything else as a usage error quoting it', () => {
    for (const text of [
      '',
      hex.slice(1),
      `${hex}0`,
      `sha512:${hex}`,
      `sha256: ${hex}`,
      'zz'.repeat(32),
    ]) {
      const error = expectVouchError(() => parseSha256(text), 'USAGE');
      expect(error.message).toBe(
        `not a SHA-256 digest (sha256:<64 hex>, or the 64 hex alone): ${text}`,
      );
      expectVouchError(() => parseDigest(text), 'USAGE');
    }
    expectVouchError(() => parseSha256(`merkle-sha256-1mib:${hex}`), 'USAGE');
  });

  it('reads image IDs and their prefixes of 12 or more, in either case', () => {
    expect(parseImageId(`SHA256:${upper}`)).toEqual({
      ref: `sha256:${hex}`,
      id: `sha256:${hex}`,
    });
    expect(parseImageId(upper)).toEqual({ ref: hex, id: `sha256:${hex}` });
    expect(parseImageId('ABCDEF012345')).toEqual({ ref: 'abcdef012345', id: undefined });
    for (const name of ['ubuntu', 'abcdef01234', 'ghcr.io/x/y:1', `${hex}0`]) {
      expect(parseImageId(name)).toBeUndefined();
    }
  });
});
