import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { embeddedFile } from '../embedded';

/**
 * Starts the worker thread `<name>.worker` that sits beside the module at `here` (its
 * import.meta.url): from the bundle, dist/<name>.worker.cjs beside dist/vouch.cjs
 * (scripts/build.ts bundles every *.worker.ts and points import.meta.url at the bundle
 * file); in a single executable, from the copy of that bundle it carries (embedded.ts);
 * from the TypeScript sources (vitest, tsx), <name>.worker.ts through tsx's hook.
 */
export function startWorker(here: string, name: string): Worker {
  const bundle = `${name}.worker.cjs`;
  const embedded = embeddedFile(bundle);
  if (embedded !== undefined) return new Worker(embedded, { eval: true });
  if (!here.endsWith('.ts')) return new Worker(new URL(`./${bundle}`, here));
  const tsx = createRequire(here).resolve('tsx/cjs');
  const entry = fileURLToPath(new URL(`./${name}.worker.ts`, here));
  return new Worker(`require(${JSON.stringify(tsx)});require(${JSON.stringify(entry)});`, {
    eval: true,
  });
}
