import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { bundleMainScript, type Storage } from './main-script';
import { nodeBinary } from './node';
import { type Arch, commandFor, stripFor } from './targets';

const exec = promisify(execFile);

/**
 * A Node single executable application of vouch for `arch`, as
 * https://nodejs.org/api/single-executable-applications.html makes one on Linux: the pinned
 * Node (node.ts), stripped; a preparation blob of the main script (main-script.ts), made by
 * that same Node; the blob injected with postject. dist/ must be built.
 */
export async function buildExecutable(arch: Arch, out: string): Promise<void> {
  const node = await nodeBinary(arch);
  const work = await mkdtemp(join(tmpdir(), `vouch-sea-${arch}-`));
  try {
    // Stripped before the blob goes in, never after: strip moves the sections postject laid
    // out (.init, .plt), and the program dies at start with SIGILL (tried on x64).
    const program = join(work, 'node');
    await exec(stripFor(arch), ['-o', program, node.path]);

    const main = join(work, 'main.cjs');
    const assets = await bundleMainScript(main, storage(node.version));
    const blob = join(work, 'sea-prep.blob');
    const config = join(work, 'sea-config.json');
    await writeFile(
      config,
      JSON.stringify({
        main,
        output: blob,
        disableExperimentalSEAWarning: true,
        // The main script's compiled code, made with the blob and kept in it: `--version`
        // starts in ~40 ms instead of ~70 ms on x64 (docs/executables.md).
        useCodeCache: true,
        assets,
      }),
    );
    // The blob comes from the Node it goes into, run under qemu for another machine: its
    // format and its code cache are that version's and that word size's.
    const generate = commandFor(arch, program, ['--experimental-sea-config', config]);
    await exec(generate.file, [...generate.args], { env: { ...process.env, ...generate.env } });

    await exec(process.execPath, [
      createRequire(import.meta.url).resolve('postject/dist/cli.js'),
      program,
      'NODE_SEA_BLOB',
      blob,
      '--sentinel-fuse',
      'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
    ]);
    await mkdir(dirname(out), { recursive: true });
    await copyFile(program, out);
    await chmod(out, 0o755);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** SEA assets came in Node 20.12.0 and 21.7.0 (main-script.ts). */
function storage(version: string): Storage {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const assets = major >= 22 || (major === 21 && minor >= 7) || (major === 20 && minor >= 12);
  return assets ? 'assets' : 'script';
}
