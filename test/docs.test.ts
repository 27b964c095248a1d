import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README and docs/ link to each other and into the source tree: every relative link
 * must name a file that exists and, with `#anchor`, a heading in it (GitHub's slugs).
 */

const skipped = new Set(['node_modules', 'dist', '.git']);

/** The repository's files whose names match `pattern`, relative to its root. */
function filesOf(pattern: RegExp, dir = '.'): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (skipped.has(entry.name)) return [];
    const path = dir === '.' ? entry.name : join(dir, entry.name);
    // Symbolic links are not followed (the fixture trees hold dangling ones).
    if (entry.isDirectory()) return filesOf(pattern, path);
    return entry.isFile() && pattern.test(entry.name) ? [path] : [];
  });
}

/** The text outside fenced code blocks and code spans, where links and headings live. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, 'code');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown text's headings; repeated ones get -1, -2, … as on GitHub. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  // Code spans keep their text in headings (`## \`vouch sync\``), so only fences go.
  const text = markdown.replace(/^```[\s\S]*?^```/gm, '');
  for (const match of text.matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(match[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** The relative links of `file` that lead nowhere, each with why. */
function brokenLinks(file: string, markdown: string, read = readText): string[] {
  const targets = [
    ...prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)|^\[[^\]]+\]:\s*(\S+)/gm),
  ]
    .map((match) => (match[1] ?? match[2]) as string)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
  const broken: string[] = [];
  for (const target of targets) {
    const [path = '', anchor] = target.split('#', 2);
    const resolved = path === '' ? file : normalize(join(dirname(file), decodeURI(path)));
    const text = read(resolved);
    if (text === undefined) {
      broken.push(`${target}: no file ${resolved}`);
    } else if (anchor !== undefined && resolved.endsWith('.md') && !anchors(text).has(anchor)) {
      broken.push(`${target}: no heading #${anchor} in ${resolved}`);
    }
  }
  return broken;
}

function readText(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  return statSync(path).isDirectory() ? '' : readFileSync(path, 'utf8');
}

describe('documentation links', () => {
  const files = filesOf(/\.md$/);

  it('finds the README, docs/ and the other READMEs', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'README.md',
        'docs/usage.md',
        'docs/architecture.md',
        'hw/README.md',
        'agent/device/README.md',
      ]),
    );
  });

  it.each(files)('%s: every relative link points at a file (and heading) that exists', (file) => {
    expect(brokenLinks(file, readFileSync(file, 'utf8'))).toEqual([]);
  });

  it('makes the anchors GitHub makes', () => {
    expect([
      ...anchors(
        [
          '# Usage',
          '## Device state: sync, status, snapshots',
          '## `verify -o json` (files)',
          '```sh',
          '# not a heading',
          '```',
          '## SHA-256',
          '## Usage',
        ].join('\n'),
      ),
    ]).toEqual([
      'usage',
      'device-state-sync-status-snapshots',
      'verify--o-json-files',
      'sha-256',
      'usage-1',
    ]);
  });

  it('reports a missing file, a missing heading, and leaves web links and code alone', () => {
    const files: Record<string, string> = { 'docs/a.md': '# Title\n', 'hw/x.ts': '' };
    const read = (path: string) => files[path];
    const markdown = [
      '[ok](a.md#title) [ok](../hw/x.ts) [ok](#here) [web](https://example.org/#x)',
      '[gone](b.md) [no heading](a.md#other) [up](../README.md)',
      '`[in code](nowhere.md)`',
      '```',
      '[in a block](nowhere.md)',
      '```',
      '## Here',
      '[ref]: ../hw/missing.ts',
    ].join('\n');
    files['docs/self.md'] = markdown;
    expect(brokenLinks('docs/self.md', markdown, read)).toEqual([
      'b.md: no file docs/b.md',
      'a.md#other: no heading #other in docs/a.md',
      '../README.md: no file README.md',
      '../hw/missing.ts: no file hw/missing.ts',
    ]);
  });
});

describe('the repository stands alone', () => {
  it('points at no file outside it (the design notes it was started from)', () => {
    const outside = new RegExp(['/work/', 'shared', '|\\.\\./', 'shared'].join(''));
    const offenders = filesOf(/\.(md|ts|cjs|sh|json|ya?ml)$|^run$/).filter((file) =>
      outside.test(readFileSync(file, 'utf8')),
    );
    expect(offenders).toEqual([]);
  });
});

/**
 * docs/security.md names the test behind each claim as a link to its file followed by
 * “quoted” text from its name; every quote belongs to the link before it.
 */
function citedTests(markdown: string): { file: string; name: string }[] {
  const cited: { file: string; name: string }[] = [];
  let file: string | undefined;
  for (const match of markdown.matchAll(/\]\(\.\.\/(test\/[^)]+)\)|“([^”]+)”/g)) {
    if (match[1] !== undefined) file = match[1];
    else if (file !== undefined) {
      const name = (match[2] as string)
        .replace(/\s+/g, ' ')
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>');
      cited.push({ file, name });
    }
  }
  return cited;
}

describe('the security model', () => {
  const cited = citedTests(readFileSync('docs/security.md', 'utf8'));

  it('names the test of each claim: every quoted name is in the file linked before it', () => {
    expect(cited.length).toBeGreaterThan(60);
    const missing = cited.filter(({ file, name }) => !readFileSync(file, 'utf8').includes(name));
    expect(missing).toEqual([]);
  });

  it('reads citations as written, and a quote without a link before it as none', () => {
    expect(
      citedTests('“x” [a](../test/a.test.ts) “b”,\n  “c &lt;d&gt;” [e](../test/e.test.ts) “f”'),
    ).toEqual([
      { file: 'test/a.test.ts', name: 'b' },
      { file: 'test/a.test.ts', name: 'c <d>' },
      { file: 'test/e.test.ts', name: 'f' },
    ]);
  });
});
