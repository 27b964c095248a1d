import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { outdir } from '../lib/bundle';
import { nodeLicense } from '../sea/node';
import type { Arch } from '../sea/targets';

/**
 * /usr/share/doc/vouch/copyright in the machine-readable format
 * (https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/): vouch, the Node.js
 * inside the executable (its LICENSE, from the same npm package as its binary), and every
 * npm library bundled into dist/, each with its own license text. Apache-2.0 refers to
 * /usr/share/common-licenses, as Debian Policy 12.5 asks.
 */
export async function copyright(arch: Arch): Promise<string> {
  const node = await nodeLicense(arch);
  const stanzas = [
    [
      'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
      'Upstream-Name: vouch',
      `Comment: /usr/bin/vouch is a Node.js single executable application: the official\n Node.js ${node.version} build (npm package ${node.package}) with vouch's JavaScript and\n the npm libraries below bundled into it.`,
    ],
    ['Files: *', 'Copyright: vouch contributors', 'License: Apache-2.0'],
    [
      'Files: node/*',
      'Copyright: Node.js contributors, Joyent, Inc. and the authors of the libraries it embeds',
      'Comment: The Node.js runtime in /usr/bin/vouch.',
      `License: Node.js\n${field(await readFile(node.path, 'utf8'))}`,
    ],
  ];
  for (const library of await bundledLibraries()) {
    const text = library.license === 'Apache-2.0' ? undefined : await licenseText(library.dir);
    stanzas.push([
      `Files: node_modules/${library.name}/*`,
      `Copyright: ${library.copyright}`,
      `License: ${library.license}${text ? `\n${field(text)}` : ''}`,
    ]);
  }
  stanzas.push([
    'License: Apache-2.0',
    field(
      'On Debian systems, the full text of the Apache License, Version 2.0 can be found in\n' +
        '/usr/share/common-licenses/Apache-2.0.',
    ),
  ]);
  return `${stanzas.map((lines) => lines.join('\n')).join('\n\n')}\n`;
}

/** Text as the continuation lines of a field: indented, empty lines as " .". */
function field(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => (line.trim() === '' ? ' .' : ` ${line.trimEnd()}`))
    .join('\n');
}

interface Library {
  readonly name: string;
  readonly dir: string;
  readonly license: string;
  readonly copyright: string;
}

/** The packages of the files esbuild put in dist/'s bundles (dist/inputs.json, scripts/build.ts). */
async function bundledLibraries(): Promise<Library[]> {
  const inputs = JSON.parse(await readFile(join(outdir, 'inputs.json'), 'utf8')) as string[];
  const dirs = new Set<string>();
  for (const input of inputs) {
    // The innermost package: bl/node_modules/readable-stream is readable-stream.
    const found = resolve(input).match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
    if (found?.[1]) dirs.add(found[1]);
  }
  const libraries = await Promise.all(
    [...dirs].map(async (dir): Promise<Library> => {
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
        name: string;
        version: string;
        license?: string;
        licenses?: { type: string }[];
        author?: string | { name: string };
      };
      const license = manifest.license ?? manifest.licenses?.map((l) => l.type).join(' or ');
      if (!license) throw new Error(`${dir}/package.json names no license`);
      const author = typeof manifest.author === 'string' ? manifest.author : manifest.author?.name;
      return {
        name: manifest.name,
        dir,
        license,
        copyright: author ?? `the authors of ${manifest.name}`,
      };
    }),
  );
  // One stanza per package, whichever versions of it are bundled.
  const byName = new Map(libraries.map((library) => [library.name, library]));
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

async function licenseText(dir: string): Promise<string | undefined> {
  const file = readdirSync(dir).find((name) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(name));
  return file && readFile(join(dir, file), 'utf8');
}
