import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * Real services the integration tests and the benchmarks start, and systemd's notification
 * program the agent runs. A missing binary fails with a message saying what to install; in
 * the tests, the only way to skip is the service's VOUCH_SKIP_* variable
 * (test/helpers/services.ts).
 */
export const services = {
  mqtt: {
    skipEnv: 'VOUCH_SKIP_MQTT',
    binary: 'mosquitto',
    install: 'apt-get install mosquitto',
  },
  docker: {
    skipEnv: 'VOUCH_SKIP_DOCKER',
    binary: 'dockerd',
    install: 'apt-get install docker.io (dockerd, containerd and runc), and run the tests as root',
  },
  systemd: {
    skipEnv: 'VOUCH_SKIP_SYSTEMD',
    binary: 'systemd-notify',
    install: 'apt-get install systemd',
  },
  chromium: {
    skipEnv: 'VOUCH_SKIP_BROWSER',
    binary: 'chromium',
    install: 'apt-get install chromium',
  },
  // The single executables for arm64 and armv7, built and run under qemu-user
  // (scripts/sea/targets.ts): qemu, the targets' C libraries, their binutils to strip.
  qemu: {
    skipEnv: 'VOUCH_SKIP_QEMU',
    binary: 'qemu-aarch64-static',
    install:
      'apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross ' +
      'libgcc-s1-arm64-cross libc6-armhf-cross libstdc++6-armhf-cross libgcc-s1-armhf-cross ' +
      'libatomic1-armhf-cross binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf',
  },
  // os-image/rauc: Debian's RAUC, its bundles (mksquashfs) and its service on a D-Bus
  // session bus; the handler parses vouch's JSON with jq.
  rauc: {
    skipEnv: 'VOUCH_SKIP_RAUC',
    binary: 'rauc',
    install: 'apt-get install rauc squashfs-tools dbus jq openssl',
  },
  // os-image/buildroot: its Kconfig read by the Linux kconfig tools, its .mk run by GNU make.
  kconfig: {
    skipEnv: 'VOUCH_SKIP_KCONFIG',
    binary: 'kconfig-conf',
    install: 'apt-get install kconfig-frontends-nox make',
  },
  // The arm64 Debian root filesystem (test/os-image/rootfs.ts): made by debootstrap, its
  // programs run under qemu-user; needs root (chroot, mounts, binfmt_misc).
  rootfs: {
    skipEnv: 'VOUCH_SKIP_ROOTFS',
    binary: 'debootstrap',
    install: 'apt-get install debootstrap qemu-user-static, and run the tests as root',
  },
} as const;

export type Service = keyof typeof services;

/** Absolute path of a service binary, or an error that says how to get it. */
export function requireBinary(service: Service): string {
  return locateBinary(services[service]);
}

export function locateBinary({
  binary,
  install,
  skipEnv,
}: {
  readonly binary: string;
  readonly install: string;
  readonly skipEnv: string;
}): string {
  try {
    // sbin is not on every PATH, yet that is where Debian puts both daemons.
    const path = `${process.env.PATH ?? ''}:/usr/sbin:/usr/local/sbin:/sbin`;
    return execFileSync('sh', ['-c', `command -v ${binary}`], { env: { PATH: path } })
      .toString()
      .trim();
  } catch {
    throw new Error(`${binary} not found: ${install}, or set ${skipEnv}=1 to skip these tests`);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** Polls `probe` until it resolves true, or throws after `timeoutMs` with `what`. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  failed?: () => Error | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = failed?.();
    if (failure) throw failure;
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
