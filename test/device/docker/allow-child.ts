/**
 * Adds allow-list entries `from`, `from`+1, … (reason `entry <i>`) until killed, for
 * allow.test.ts to kill -9 mid-write.
 */
import { createHash } from 'node:crypto';
import { addAllowEntry } from '../../../agent/device/docker/allow';

const [dir = '', from = '0'] = process.argv.slice(2);
void (async () => {
  for (let i = Number(from); ; i++) {
    await addAllowEntry(dir, {
      image: `sha256:${createHash('sha256').update(`image ${i}`).digest('hex')}`,
      name: null,
      reason: `entry ${i}`,
      at: '2026-01-01T00:00:00Z',
      by: 'test',
    });
  }
})();
