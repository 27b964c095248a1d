import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCpuInfo } from '../../hw/cpuinfo';

const dumps = join(import.meta.dirname, '../fixtures/cpuinfo');
const read = (name: string) => readFileSync(join(dumps, `${name}.cpuinfo`), 'utf8');

describe('parseCpuInfo', () => {
  // Real dumps (test/fixtures/cpuinfo), stray lines and all: one row per board.
  it.each([
    [
      'raspberry-pi3b',
      4,
      'arm64',
      '4× Cortex-A53',
      false,
      'a02082',
      'Raspberry Pi 3 Model B Rev 1.2',
    ],
    ['raspberry-pi4', 4, 'arm64', '4× Cortex-A72', false, null, null],
    [
      'raspberry-pi5',
      4,
      'arm64',
      '4× Cortex-A76',
      true,
      'd04170',
      'Raspberry Pi 5 Model B Rev 1.0',
    ],
    ['rk3588', 8, 'arm64', '4× Cortex-A55 + 4× Cortex-A76', true, null, null],
    ['rk3568', 4, 'arm64', '4× Cortex-A55', true, null, null],
    ['amlogic-s905', 4, 'arm64', '4× Cortex-A53', false, null, null],
    ['amlogic-s905x3', 4, 'arm64', '4× Cortex-A55', true, null, null],
    ['amlogic-s922x', 6, 'arm64', '2× Cortex-A53 + 4× Cortex-A73', true, null, null],
  ])('%s: %i cores, %s, %s, sha2 %s', (name, processors, arch, cpu, sha2, revision, model) => {
    expect(parseCpuInfo(read(name))).toEqual({ processors, arch, cpu, sha2, revision, model });
  });

  it('reads x86: model name, x64 from the lm flag, sha_ni', () => {
    const block = (n: number, flags: string) =>
      `processor\t: ${n}\nvendor_id\t: GenuineIntel\nmodel\t\t: 156\n` +
      `model name\t: Intel(R) Celeron(R) N5105 @ 2.00GHz\nflags\t\t: ${flags}\n\n`;
    const info = parseCpuInfo(block(0, 'fpu lm sse2 sha_ni') + block(1, 'fpu lm sse2 sha_ni'));
    expect(info).toEqual({
      processors: 2,
      arch: 'x64',
      cpu: 'Intel(R) Celeron(R) N5105 @ 2.00GHz',
      sha2: true,
      revision: null,
      // x86 `model` is a number, not a board: only a Pi kernel's `Model` counts.
      model: null,
    });
    expect(parseCpuInfo(block(0, 'fpu sse2')).arch).toBe('ia32');
    expect(parseCpuInfo(block(0, 'fpu lm sse2')).sha2).toBe(false);
  });

  it('calls SHA-2 present only when every core has it', () => {
    const text = 'processor : 0\nFeatures : fp sha2\n\nprocessor : 1\nFeatures : fp\n';
    expect(parseCpuInfo(text).sha2).toBe(false);
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2000 }), (text) => {
        const info = parseCpuInfo(text);
        expect(info.processors).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});
