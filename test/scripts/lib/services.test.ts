import { describe, expect, it } from 'vitest';
import { locateBinary } from '../../../scripts/lib/services';

describe('service binaries', () => {
  it('finds a binary that exists, in sbin too', () => {
    expect(locateBinary({ binary: 'sh', install: '-', skipEnv: '-' })).toMatch(/\/sh$/);
  });

  it('fails for a missing binary with what to install and how to skip', () => {
    expect(() =>
      locateBinary({ binary: 'vouch-no-such-daemon', install: 'apt-get install x', skipEnv: 'X' }),
    ).toThrow('vouch-no-such-daemon not found: apt-get install x, or set X=1 to skip these tests');
  });
});
