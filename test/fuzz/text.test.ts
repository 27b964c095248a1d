import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDigest, parseImageId } from '../../agent/core/digest';
import { normalizeImageName } from '../../agent/core/images';
import { rootVersionOfPath } from '../../agent/core/layout';
import { requireMirrorUrls } from '../../agent/core/mirror-url';
import { formatUtcTime, parseUtcTime } from '../../agent/core/time';
import { fuzz, mutatedBytes, parses } from './fuzz';

/**
 * The short strings read from outside: mirror URLs (config, `--mirror`, remembered
 * mirrors), RFC 3339 times (statements, roots), digests and image references (API bodies,
 * the command line), root file names (snapshots, mirrors). Mutants of valid ones, and each
 * at a huge size.
 */

const huge = (text: string) => text.repeat(Math.ceil(1_000_000 / text.length));

/** Mutants of `valid`, read as UTF-8 (invalid bytes become U+FFFD), or a huge repetition. */
function strings(...valid: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc
      .oneof(...valid.map((text) => mutatedBytes(Buffer.from(text))))
      .map((bytes) => Buffer.from(bytes).toString('utf8')),
    fc.constantFrom(...valid.map(huge)),
  );
}

describe('fuzz: short strings from outside', () => {
  it('mirror URLs: a URL that parses, or USAGE', () => {
    fuzz(strings('https://mirror.example.org/log/', 'file:///media/usb/log/'), (text) => {
      // requireMirrorUrls returns nothing: `true` after it marks a URL taken.
      const taken = parses(() => {
        requireMirrorUrls([text]);
        return true;
      }, ['USAGE']);
      if (taken) expect(new URL(text).protocol).toMatch(/^(https?|file):$/);
    });
  });

  it('times: a real UTC instant written back the same, or the code asked for', () => {
    fuzz(strings('2025-01-31T12:00:00Z', '2024-02-29T23:59:59.123456789Z'), (text) => {
      const ms = parses(
        () => parseUtcTime(text, 'time', 'STATEMENT_INVALID'),
        ['STATEMENT_INVALID'],
      );
      if (ms === undefined) return;
      expect(Number.isSafeInteger(ms) && ms >= 0).toBe(true);
      expect(formatUtcTime(ms)).toBe(text.replace(/\.\d+Z$/, 'Z'));
    });
  });

  it('digests and image IDs: 64 lowercase hex, or USAGE', () => {
    fuzz(strings(`sha256:${'aB'.repeat(32)}`, `merkle-sha256-1mib:${'0'.repeat(64)}`), (text) => {
      const digest = parses(() => parseDigest(text), ['USAGE']);
      if (digest !== undefined) expect(digest.hex).toMatch(/^[0-9a-f]{64}$/);
      const id = parseImageId(text);
      if (id?.id !== undefined) expect(id.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    });
  });

  it('image references: a normalized name that normalizes to itself, or USAGE', () => {
    fuzz(
      strings('ghcr.io/example/app:1.0', 'ubuntu', `localhost:5000/a/b@sha256:${'c'.repeat(64)}`),
      (text) => {
        const name = parses(() => normalizeImageName(text), ['USAGE']);
        if (name !== undefined) expect(normalizeImageName(name)).toBe(name);
      },
    );
  });

  it('root file paths: a version that names the same path, or none', () => {
    fuzz(strings('roots/1.json', 'roots/9007199254740991.json'), (path) => {
      const version = rootVersionOfPath(path);
      if (version !== undefined) expect(`roots/${version}.json`).toBe(path);
    });
  });
});
