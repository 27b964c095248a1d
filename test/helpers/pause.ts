/**
 * The smallest program a container `FROM scratch` can run: a static Linux ELF64 executable
 * that blocks in a system call forever (until a signal kills it), made here byte by byte
 * so the tests need no compiler, busybox or base image. One PT_LOAD segment maps the whole
 * file at 0x400000 (ELF-64 Object File Format; System V ABI), and execution starts right
 * after the two headers.
 */

const base = 0x400000n;
const elfHeaderSize = 64;
const programHeaderSize = 56;

/** Machine code per Node `process.arch`: a loop around a blocking system call. */
const programs: Readonly<Record<string, { machine: number; code: readonly number[] }>> = {
  // loop: mov eax, 34 (pause); syscall; jmp loop
  x64: { machine: 0x3e, code: [0xb8, 0x22, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7] },
  // loop: x0..x3 = 0; x8 = 73 (ppoll with no descriptors and no timeout); svc 0; b loop
  arm64: {
    machine: 0xb7,
    code: [
      0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, 0xd2800928, 0xd4000001, 0x17fffffa,
    ].flatMap((word) => [word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, word >>> 24]),
  },
};

export function pauseProgram(arch: string = process.arch): Uint8Array {
  const program = programs[arch];
  if (!program) throw new Error(`no pause program for ${arch}; known: ${Object.keys(programs)}`);
  const entry = elfHeaderSize + programHeaderSize;
  const size = BigInt(entry + program.code.length);
  const file = Buffer.alloc(entry + program.code.length);
  // e_ident: magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV.
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  file.writeUInt16LE(2, 16); // e_type ET_EXEC
  file.writeUInt16LE(program.machine, 18);
  file.writeUInt32LE(1, 20); // e_version
  file.writeBigUInt64LE(base + BigInt(entry), 24); // e_entry
  file.writeBigUInt64LE(BigInt(elfHeaderSize), 32); // e_phoff
  file.writeUInt16LE(elfHeaderSize, 52); // e_ehsize
  file.writeUInt16LE(programHeaderSize, 54); // e_phentsize
  file.writeUInt16LE(1, 56); // e_phnum
  const ph = elfHeaderSize;
  file.writeUInt32LE(1, ph); // p_type PT_LOAD
  file.writeUInt32LE(5, ph + 4); // p_flags PF_R | PF_X
  file.writeBigUInt64LE(base, ph + 16); // p_vaddr (p_offset 0: the whole file)
  file.writeBigUInt64LE(base, ph + 24); // p_paddr
  file.writeBigUInt64LE(size, ph + 32); // p_filesz
  file.writeBigUInt64LE(size, ph + 40); // p_memsz
  file.writeBigUInt64LE(0x1000n, ph + 48); // p_align
  file.set(program.code, entry);
  return new Uint8Array(file);
}
