import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemdNotifier } from '../../../agent/device/agent/notify';
import { locateBinary, requireBinary, services, waitFor } from '../../../scripts/lib/services';
import { describeWith } from '../../helpers/services';

/**
 * The notifications as systemd gets them: a Python child listens on a Unix datagram socket
 * (Node has none) and prints each datagram with the sender's pid from its credentials
 * (SO_PASSCRED), closing any descriptor that comes along (systemd-notify's barrier).
 */
const listener = `
import json, os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + path[1:] if path.startswith('@') else path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({'listening': path}), flush=True)
while True:
    data, ancillary, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64))
    pid = None
    for level, kind, payload in ancillary:
        if kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(payload[:4], sys.byteorder)
        elif kind == socket.SCM_RIGHTS:
            for at in range(0, len(payload) - len(payload) % 4, 4):
                os.close(int.from_bytes(payload[at:at + 4], sys.byteorder))
    print(json.dumps({'pid': pid, 'lines': data.decode().split('\\n')}), flush=True)
`;

interface Datagram {
  readonly pid: number | null;
  readonly lines: readonly string[];
}

const dir = mkdtempSync(join(tmpdir(), 'vouch-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A notification socket at `address` (a path, or `@name`), and what arrived on it. */
async function listen(address: string): Promise<{ child: ChildProcess; got: Datagram[] }> {
  const python = locateBinary({
    ...services.systemd,
    binary: 'python3',
    install: 'apt-get install python3',
  });
  const child = spawn(python, ['-c', listener, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const got: Datagram[] = [];
  let listening = false;
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const message = JSON.parse(line);
    if ('listening' in message) listening = true;
    else got.push(message);
  });
  await waitFor(`a datagram socket at ${address}`, async () => listening, 10_000);
  return { child, got };
}

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
