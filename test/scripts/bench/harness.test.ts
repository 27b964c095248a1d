import { describe, expect, it } from 'vitest';
import {
  evaluate,
  type Figure,
  formatTable,
  formatValue,
  type Machine,
  median,
  mergeResults,
} from '../../../scripts/bench/harness';

const openssl: Figure = { group: 'device', name: 'openssl speed', value: 20_000, unit: 'stmt/s' };
const imported: Figure = {
  group: 'device',
  name: 'initial import',
  value: 13_000,
  unit: 'stmt/s',
  baseline: { name: openssl.name, value: openssl.value },
  target: { on: 'ratio', op: '≥', bound: 0.8, note: 'issue 18' },
};
const start: Figure = {
  group: 'start',
  name: 'verify digest',
  value: 0.18,
  unit: 's',
  baseline: { name: 'node -e 0', value: 0.09 },
  target: { on: 'ratio', op: '≤', bound: 2.5 },
  note: 'the whole command',
};
const latency: Figure = {
  group: 'agent',
  name: 'revocation',
  value: 0.066,
  unit: 's',
  target: { on: 'value', op: '≤', bound: 1 },
};

describe('the bench figures', () => {
  it('take the median of an odd and an even number of runs', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('compute the ratio to the baseline and whether each kind of target is met', () => {
    const missed = evaluate(imported);
    expect(missed.ratio).toBeCloseTo(0.65);
    expect(missed.met).toBe(false);
    expect(evaluate({ ...imported, value: 16_000 }).met).toBe(true);
    expect(evaluate(start)).toMatchObject({ ratio: 2, met: true });
    expect(evaluate({ ...start, target: { on: 'ratio', op: '≤', bound: 1.5 } }).met).toBe(false);
    expect(evaluate(latency)).toMatchObject({ met: true });
    expect(evaluate(latency).ratio).toBeUndefined();
    expect(evaluate(openssl)).toEqual(openssl);
  });

  it('format values in their units', () => {
    expect(formatValue(0.128, 's')).toBe('128 ms');
    expect(formatValue(2.5, 's')).toBe('2.50 s');
    expect(formatValue(131.4, 's')).toBe('131.4 s');
    expect(formatValue(0.0015, 's')).toBe('1.50 ms');
    expect(formatValue(4.2e-6, 's')).toBe('4.200 µs');
    expect(formatValue(1.5 * 2 ** 30, 'B/s')).toBe('1,536 MiB/s');
    expect(formatValue(82.7 * 2 ** 20, 'B')).toBe('82.7 MiB');
    expect(formatValue(15_931.4, 'stmt/s')).toBe('15,931 stmt/s');
    expect(formatValue(Number.NaN, 'B')).toBe('n/a');
  });

  it('print one table: a row per figure, groups apart, targets met or missed, footnotes once', () => {
    const table = formatTable([openssl, imported, start, latency].map(evaluate)).split('\n');
    expect(table[0]).toMatch(/^group\s+what\s+measured\s+baseline\s+ratio\s+target$/);
    expect(table[1]).toMatch(/^-+( +-+){5}$/);
    expect(table[2]).toMatch(/^device\s+openssl speed\s+20,000 stmt\/s$/);
    expect(table[3]).toMatch(
      /^device\s+initial import \[1\]\s+13,000 stmt\/s\s+20,000 stmt\/s\s+0\.65×\s+≥ 0\.8×: MISSED$/,
    );
    expect(table[4]).toBe('');
    expect(table[5]).toMatch(
      /^start\s+verify digest \[2\]\s+180 ms\s+90 ms\s+2\.00×\s+≤ 2\.5×: met$/,
    );
    expect(table[7]).toMatch(/^agent\s+revocation\s+66 ms\s+≤ 1\.00 s: met$/);
    expect(table.slice(-2)).toEqual(['[1] issue 18', '[2] the whole command']);
  });

  it('print the same table as Markdown', () => {
    const table = formatTable([openssl, imported].map(evaluate), true).split('\n');
    expect(table[0]).toBe('| group | what | measured | baseline | ratio | target |');
    expect(table[1]).toBe('| --- | --- | ---: | ---: | ---: | --- |');
    expect(table[3]).toBe(
      '| device | initial import [1] | 13,000 stmt/s | 20,000 stmt/s | 0.65× | ≥ 0.8×: MISSED |',
    );
    expect(table.slice(-1)).toEqual(['1. issue 18']);
  });

  it('keep the groups not run when the machine is the same, and only then', () => {
    const machine: Machine = { cpu: 'x', cores: 2, arch: 'x64', memoryBytes: 1, node: 'v20' };
    const first = mergeResults(undefined, machine, 'd1', [openssl, imported, latency]);
    expect(Object.keys(first.groups)).toEqual(['device', 'agent']);
    expect(first.groups.device?.figures[1]).toMatchObject({ met: false });
    const second = mergeResults(first, machine, 'd2', [{ ...latency, value: 0.07 }]);
    expect(second.groups.device?.date).toBe('d1');
    expect(second.groups.agent).toMatchObject({ date: 'd2', figures: [{ value: 0.07 }] });
    const elsewhere = mergeResults(first, { ...machine, node: 'v22' }, 'd3', [latency]);
    expect(Object.keys(elsewhere.groups)).toEqual(['agent']);
  });
});
