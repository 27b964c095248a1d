/**
 * /proc/cpuinfo: core count, architecture, SHA-2 instructions and, on a Raspberry Pi, the
 * board's revision code. Dumps differ by kernel and architecture (and the ones people post
 * carry stray lines), so the parser reads `key : value` lines and ignores anything else.
 */

export type Arch = 'arm64' | 'arm' | 'x64' | 'ia32' | 'unknown';

export interface CpuInfo {
  /** Processors the kernel lists (online ones). */
  readonly processors: number;
  readonly arch: Arch;
  /** "Intel(R) Celeron(R) N5105 @ 2.00GHz", or for ARM the core types: "4× Cortex-A72". */
  readonly cpu: string | null;
  /**
   * SHA-256 in hardware on every listed core: `sha2` in the ARM `Features` (ARMv8 Crypto
   * Extensions), `sha_ni` in the x86 `flags`. OpenSSL, hence node:crypto, uses them.
   */
  readonly sha2: boolean;
  /** A Raspberry Pi's `Revision` code (hex), decoded by hw/raspberrypi.ts. */
  readonly revision: string | null;
  /** A Raspberry Pi kernel's `Model` line. */
  readonly model: string | null;
}

/** Arm Ltd. core part numbers (MIDR_EL1.PartNum, implementer 0x41) on boards HA OS runs on. */
const armCores: Readonly<Record<string, string>> = {
  '0xd03': 'Cortex-A53',
  '0xd04': 'Cortex-A35',
  '0xd05': 'Cortex-A55',
  '0xd07': 'Cortex-A57',
  '0xd08': 'Cortex-A72',
  '0xd09': 'Cortex-A73',
  '0xd0b': 'Cortex-A76',
};

type Fields = Map<string, string>;

export function parseCpuInfo(text: string): CpuInfo {
  const processors: Fields[] = [];
  const global: Fields = new Map();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z][^:\t]*?)\s*:\s?(.*)$/.exec(line);
    if (!match) continue;
    // Case matters: x86 has `model` (a number) where a Pi kernel has `Model` (the board).
    const key = match[1] as string;
    const value = (match[2] as string).trim();
    if (key === 'processor') processors.push(new Map());
    else processors.at(-1)?.set(key, value);
    // The first value of each key; the board's lines (Hardware, Revision, Model) come last.
    if (!global.has(key)) global.set(key, value);
  }
  const features = processors.map((p) => tokens(p.get('flags') ?? p.get('Features')));
  return {
    processors: processors.length,
    arch: archOf(global),
    cpu: describeCpu(processors, global),
    sha2: features.length > 0 && features.every((set) => set.has('sha2') || set.has('sha_ni')),
    revision: global.get('Revision') ?? null,
    model: global.get('Model') ?? null,
  };
}

function tokens(value: string | undefined): Set<string> {
  return new Set((value ?? '').split(/\s+/).filter(Boolean));
}

function archOf(fields: Fields): Arch {
  const flags = fields.get('flags');
  if (flags !== undefined) return tokens(flags).has('lm') ? 'x64' : 'ia32';
  const armArchitecture = fields.get('CPU architecture');
  if (armArchitecture === undefined) return 'unknown';
  // An AArch64 kernel reports 8; a 32-bit ARM kernel reports 7, even on ARMv8 cores.
  return armArchitecture === '8' ? 'arm64' : 'arm';
}

function describeCpu(processors: readonly Fields[], global: Fields): string | null {
  const modelName = global.get('model name');
  if (global.has('flags')) return modelName ?? null;
  const counts = new Map<string, number>();
  for (const processor of processors) {
    const part = processor.get('CPU part');
    if (part === undefined) continue;
    const implementer = processor.get('CPU implementer');
    const name = (implementer === '0x41' && armCores[part]) || `CPU ${implementer}/${part}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  if (counts.size === 0) return modelName ?? null;
  return [...counts].map(([name, count]) => `${count}× ${name}`).join(' + ');
}
