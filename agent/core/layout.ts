/**
 * The trust root chain as a log publishes it beside its tiles, and as a device and a
 * snapshot keep it: `roots/<V>.json`, V from 1 (docs/formats.md "Trust root"). The one
 * place that names these files.
 */

export const rootsDir = 'roots';

/** The path of root version `version`, relative to the directory that holds `roots/`. */
export const rootPath = (version: number): string => `${rootsDir}/${version}.json`;

const rootFileName = /^([1-9][0-9]{0,15})\.json$/;

/**
 * The version a name in `roots/` stands for, or undefined when it is no root file: a
 * version is a safe integer (the root format caps it at 2^53 − 1), written without zeros
 * in front.
 */
export function rootVersionOf(name: string): number | undefined {
  const version = Number(rootFileName.exec(name)?.[1]);
  return Number.isSafeInteger(version) ? version : undefined;
}

/** The version a path `roots/<V>.json` stands for, or undefined for any other path. */
export function rootVersionOfPath(path: string): number | undefined {
  const prefix = `${rootsDir}/`;
  return path.startsWith(prefix) ? rootVersionOf(path.slice(prefix.length)) : undefined;
}

/** The root versions among the names of a `roots/` directory, ascending. */
export function rootVersions(names: readonly string[]): number[] {
  return names
    .map(rootVersionOf)
    .filter((version) => version !== undefined)
    .sort((a, b) => a - b);
}
