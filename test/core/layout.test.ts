import { describe, expect, it } from 'vitest';
import { rootPath, rootVersionOf, rootVersionOfPath, rootVersions } from '../../agent/core/layout';

describe('the published root chain layout', () => {
  it('names root version V roots/V.json, and reads the version back', () => {
    expect(rootPath(3)).toBe('roots/3.json');
    expect(rootVersionOfPath(rootPath(3))).toBe(3);
    expect(rootVersionOf('12.json')).toBe(12);
  });

  it('takes no other name for a root file: no 0, no leading zero, no sign, nothing past 2^53 − 1', () => {
    for (const name of [
      '0.json',
      '01.json',
      '-1.json',
      '1.json.tmp',
      '.1.json',
      '1.JSON',
      'a.json',
    ]) {
      expect(rootVersionOf(name), name).toBeUndefined();
    }
    expect(rootVersionOf(`${Number.MAX_SAFE_INTEGER}.json`)).toBe(Number.MAX_SAFE_INTEGER);
    expect(rootVersionOf(`${Number.MAX_SAFE_INTEGER + 1}.json`)).toBeUndefined();
    expect(rootVersionOf(`1${'0'.repeat(16)}.json`)).toBeUndefined();
    expect(rootVersionOfPath('roots/../1.json')).toBeUndefined();
    expect(rootVersionOfPath('1.json')).toBeUndefined();
    expect(rootVersionOfPath('/roots/1.json')).toBeUndefined();
  });

  it('lists the root versions of a directory in ascending order, ignoring other files', () => {
    expect(rootVersions(['10.json', '2.json', '.2.json.abc.tmp', '1.json', 'x'])).toEqual([
      1, 2, 10,
    ]);
  });
});
