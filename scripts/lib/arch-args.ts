import { parseArgs } from 'node:util';

/**
 * The `--arch NAME` options (repeatable) of a build script: the names given, or all of
 * `choices` without any. `--help` prints `usage`; a bad option or name says what is
 * expected and exits 64 (EX_USAGE), without a stack trace.
 */
export function archArgs<A extends string>(usage: string, choices: readonly A[]): A[] {
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n\n${usage}\n`);
    process.exit(64);
  };
  let values: { arch?: string[]; help?: boolean } = {};
  try {
    ({ values } = parseArgs({
      options: { arch: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const wanted = values.arch ?? choices;
  for (const arch of wanted) {
    if (!choices.includes(arch as A)) fail(`--arch ${arch}: expected one of ${choices.join(', ')}`);
  }
  return wanted as A[];
}
