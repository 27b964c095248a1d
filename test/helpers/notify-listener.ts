import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { locateBinary, services, waitFor } from '../../scripts/lib/services';

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

export interface Datagram {
  readonly pid: number | null;
  readonly lines: readonly string[];
}

/** A notification socket at `address` (a path, or `@name`), and what arrived on it. */
export async function listenForNotifications(
  address: string,
): Promise<{ child: ChildProcess; got: Datagram[] }> {
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
