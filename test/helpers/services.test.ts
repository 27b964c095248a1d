import { describe, expect, it } from 'vitest';
import { isSkipped, serviceTag } from './services';

describe('service helpers', () => {
  it('skips only on an explicit 1', () => {
    expect(isSkipped('mqtt', { VOUCH_SKIP_MQTT: '1' })).toBe(true);
    expect(isSkipped('mqtt', { VOUCH_SKIP_MQTT: 'yes' })).toBe(false);
    expect(isSkipped('docker', {})).toBe(false);
    expect(serviceTag('docker')).toBe('[needs dockerd]');
  });
});
