import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/lib/services';
import { pauseProgram } from './pause';

describe('pauseProgram', () => {
  it('runs on this machine and blocks until killed', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'vouch-pause-')), 'pause');
    await writeFile(path, pauseProgram(), { mode: 0o755 });
    const child = spawn(path, [], { stdio: 'ignore' });
    await once(child, 'spawn');
    const pid = child.pid as number;
    // Field 3 of /proc/<pid>/stat: S = sleeping in the blocking call, not spinning or gone.
    const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    await waitFor('the program to block', async () => state() === 'S', 5000);
    expect(child.exitCode).toBeNull();
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    expect(await exited).toEqual([null, 'SIGKILL']);
  });

  it('is a static ELF64 executable for each architecture it knows, and only those', () => {
    for (const [arch, machine] of [
      ['x64', 0x3e],
      ['arm64', 0xb7],
    ] as const) {
      const file = Buffer.from(pauseProgram(arch));
      expect(file.subarray(0, 4).toString('latin1'), arch).toBe('\x7fELF');
      expect(file.readUInt16LE(18), arch).toBe(machine);
      expect(file.readBigUInt64LE(24), arch).toBe(0x400000n + 120n);
      expect(file.readBigUInt64LE(64 + 32), arch).toBe(BigInt(file.length));
    }
    expect(() => pauseProgram('riscv64')).toThrow(/no pause program for riscv64/);
  });
});
