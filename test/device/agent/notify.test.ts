import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemdNotifier } from '../../../agent/device/agent/notify';
import { requireBinary, waitFor } from '../../../scripts/lib/services';
import { listenForNotifications as listen } from '../../helpers/notify-listener';
import { describeWith } from '../../helpers/services';

const dir = mkdtempSync(join(tmpdir(), 'vouch-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logged() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return { logger, lines };
}

describeWith('systemd', 'SystemdNotifier', () => {
  let binary: string;
  const children: ChildProcess[] = [];
  beforeAll(() => {
    binary = requireBinary('systemd');
  });
  afterAll(() => {
    for (const child of children) child.kill();
  });

  for (const [kind, address] of [
    ['a path', join(dir, 'notify.sock')],
    ['the abstract namespace', `@vouch-test-${process.pid}`],
  ] as const) {
    it(`sends READY=1, STATUS and STOPPING=1 to a socket in ${kind}`, async () => {
      const { child, got } = await listen(address);
      children.push(child);
      const { logger, lines } = logged();
      const notifier = new SystemdNotifier({
        logger,
        binary,
        env: { ...process.env, NOTIFY_SOCKET: address },
      });
      expect(notifier.enabled).toBe(true);
      await notifier.notify('READY=1', 'STATUS=syncing\nREADY=0');
      await notifier.notify('STOPPING=1');
      await waitFor('both notifications', async () => got.length >= 2, 5000);
      const sent = got.filter((datagram) => !datagram.lines.includes('BARRIER=1'));
      expect(
        sent.map((datagram) => datagram.lines.filter((line) => !line.startsWith('MAINPID='))),
      ).toEqual([
        // The status's newline did not make a line of its own.
        ['READY=1', 'STATUS=syncing READY=0'],
        ['STOPPING=1'],
      ]);
      // As root, systemd-notify may send the agent's pid in its credentials (--pid).
      if (process.getuid?.() === 0) {
        expect(sent.map((datagram) => datagram.pid)).toEqual([process.pid, process.pid]);
      }
      expect(lines).toEqual([]);
    });
  }

  it('logs a notification that fails, and never throws', async () => {
    const { logger, lines } = logged();
    const notifier = new SystemdNotifier({
      logger,
      binary,
      env: { ...process.env, NOTIFY_SOCKET: join(dir, 'nobody-listens.sock') },
    });
    await notifier.notify('READY=1');
    expect(lines).toMatchObject([
      {
        level: 40,
        msg: expect.stringMatching(/^cannot notify systemd: .*No such file or directory/),
      },
    ]);
  });
});

describe('SystemdNotifier without systemd', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    const { logger, lines } = logged();
    const notifier = new SystemdNotifier({ logger, binary: join(dir, 'missing'), env: {} });
    expect(notifier.enabled).toBe(false);
    await notifier.notify('READY=1');
    expect(lines).toEqual([]);
  });

  it('logs a missing systemd-notify once, at warn', async () => {
    const { logger, lines } = logged();
    const binary = join(dir, 'no-systemd-notify');
    const notifier = new SystemdNotifier({ logger, binary, env: { NOTIFY_SOCKET: '@vouch' } });
    await notifier.notify('READY=1');
    await notifier.notify('STOPPING=1');
    expect(lines).toMatchObject([
      {
        level: 40,
        msg: `${binary} not found: systemd is not told how the agent is (install systemd)`,
      },
    ]);
  });
});
