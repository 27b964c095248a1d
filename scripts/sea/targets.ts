/**
 * The machines a single executable is built for, and how this machine runs and strips their
 * programs: natively when it is one of them, else under qemu-user (Debian: qemu-user-static)
 * with the target's C library from Debian's cross packages (libc6-arm64-cross …), which put
 * it in /usr/<triplet>; binutils-<triplet> strips.
 */

export const arches = ['arm64', 'armv7', 'x64'] as const;
export type Arch = (typeof arches)[number];

interface Target {
  /** process.arch of a Node built for it. */
  readonly processArch: NodeJS.Architecture;
  /** The GNU triplet of its binutils and its cross C library. */
  readonly triplet: string;
  readonly qemu: string;
}

const targets: Record<Arch, Target> = {
  arm64: { processArch: 'arm64', triplet: 'aarch64-linux-gnu', qemu: 'qemu-aarch64-static' },
  armv7: { processArch: 'arm', triplet: 'arm-linux-gnueabihf', qemu: 'qemu-arm-static' },
  x64: { processArch: 'x64', triplet: 'x86_64-linux-gnu', qemu: 'qemu-x86_64-static' },
};

export function isArch(name: string): name is Arch {
  return (arches as readonly string[]).includes(name);
}

export function targetArch(arch: Arch): NodeJS.Architecture {
  return targets[arch].processArch;
}

/** The program that strips an ELF file of `arch`. */
export function stripFor(arch: Arch): string {
  return `${targets[arch].triplet}-strip`;
}

/** A command line that runs `program`, built for `arch`, on this machine, and its environment. */
export interface Command {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

export function commandFor(arch: Arch, program: string, args: readonly string[] = []): Command {
  const { processArch, triplet, qemu } = targets[arch];
  if (processArch === process.arch) return { file: program, args, env: {} };
  return { file: qemu, args: [program, ...args], env: { QEMU_LD_PREFIX: `/usr/${triplet}` } };
}
