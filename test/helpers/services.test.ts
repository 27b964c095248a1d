import { describe, expect, it } from 'vitest';
import { isSkipped, locateBinary, serviceTag } from './services';

describe('service helpers', () => {
  it('finds a binary that exists, in sbin too', () => {
    expect(locateBinary({ binary: 'sh', install: '-', skipEnv: '-' })).toMatch(/\/sh$/);
  });

  it('fails for a missing binary with what to install and how to skip', () => {
    expect(() =>
      locateBinary({ binary: 'vouch-no-such-daemon', install: 'apt-get install x', skipEnv: 'X' }),
    ).toThrow('vouch-no-such-daemon not found: apt-get install x, or set X=1 to skip these tests');
  });

  it('skips only on an explicit 1', () => {
    expect(isSkipped('mqtt', { VOUCH_SKIP_MQTT: '1' })).toBe(true);
    expect(isSkipped('mqtt', { VOUCH_SKIP_MQTT: 'yes' })).toBe(false);
    expect(isSkipped('docker', {})).toBe(false);
    expect(serviceTag('docker')).toBe('[needs dockerd]');
  });
});
