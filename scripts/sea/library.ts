import { dirname, join } from 'node:path';
import { compileFunction } from 'node:vm';
import { embeddedFile } from '../../agent/embedded';

/**
 * Inside a single executable, `import('mqtt')` and `import('dockerode')` come here
 * (main-script.ts): the library's bundle (dist/mqtt.cjs, dist/dockerode.cjs) is run from
 * the executable's copy as Node's CommonJS loader runs a file, as if it sat beside the
 * executable. It gets the main script's `require`, which in a single executable loads
 * Node's built-in modules only — all a bundle needs
 * (https://nodejs.org/api/single-executable-applications.html, "require(id) in the
 * injected main script is not file based").
 */
export function requireEmbedded(file: string): unknown {
  const source = embeddedFile(file);
  if (source === undefined) throw new Error(`${file} is not in this executable`);
  const filename = join(dirname(process.execPath), file);
  const run = compileFunction(source, ['exports', 'require', 'module', '__filename', '__dirname'], {
    filename,
  });
  const module = { exports: {} };
  run(module.exports, require, module, filename, dirname(filename));
  return module.exports;
}
