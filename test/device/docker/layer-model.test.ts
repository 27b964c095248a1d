import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyLayer,
  type DirNode,
  newDir,
  shown,
  type TreeNode,
  type Whiteouts,
} from '../../../agent/device/docker/layer-model';
import type { EntryType, LayerEntry } from '../../../agent/device/docker/tarsplit';
import { expectVouchError } from '../../helpers/errors';

/**
 * The model of layer unpacking without Docker: layers as entry lists, applied as vfs does
 * (`delete`: one tree for the whole filesystem) and as overlay2 does (`mark`: a tree per
 * layer, whiteouts kept), and the tree written out as `path → what` to compare.
 */

const crc = Buffer.alloc(8, 7);

function file(name: string, size = 1): LayerEntry {
  return { name, type: 'file', size, crc: size === 0 ? null : crc, linkname: '' };
}

function dir(name: string): LayerEntry {
  return { name, type: 'dir', size: 0, crc: null, linkname: '' };
}

function link(name: string, type: 'symlink' | 'hardlink', linkname: string): LayerEntry {
  return { name, type, size: 0, crc: null, linkname };
}

function special(name: string, type: Extract<EntryType, 'char' | 'block' | 'fifo'>): LayerEntry {
  return { name, type, size: 0, crc: null, linkname: '' };
}

function describeNode(node: TreeNode): string {
  switch (node.kind) {
    case 'dir':
      return node.layer === null ? 'parent dir' : `dir @${node.layer}`;
    case 'file':
      return `file ${node.size} @${node.layer}`;
    case 'symlink':
      return `symlink ${node.target} @${node.layer}`;
    default:
      return `${node.kind} @${node.layer}`;
  }
}

/** Every path in the tree (sorted), with its kind and the layer that put it there. */
function listing(tree: DirNode): Record<string, string> {
  const paths: Record<string, string> = {};
  const walk = (node: DirNode, prefix: string) => {
    for (const [name, child] of [...node.children].sort(([a], [b]) => (a < b ? -1 : 1))) {
      paths[prefix + name] = describeNode(child);
      if (child.kind === 'dir') walk(child, `${prefix}${name}/`);
    }
  };
  walk(tree, '');
  return paths;
}

/** Layers applied in order onto one tree, as vfs has them (or, with `mark`, one layer's tree). */
function unpack(layers: readonly (readonly LayerEntry[])[], whiteouts: Whiteouts = 'delete') {
  const tree = newDir(0);
  for (const [i, entries] of layers.entries()) applyLayer(tree, entries, i, whiteouts);
  return listing(tree);
}

describe('applyLayer: files, directories and links', () => {
  it('makes the parents a path needs, and skips the root directory however it is named', () => {
    expect(
      unpack([[dir('./'), dir('/'), dir('.'), file('a.txt', 3), file('dir/sub/c.txt', 5)]]),
    ).toEqual({
      'a.txt': 'file 3 @0',
      dir: 'parent dir',
      'dir/sub': 'parent dir',
      'dir/sub/c.txt': 'file 5 @0',
    });
  });

  it('keeps a file’s size and CRC, a symlink’s target as it is, and devices and fifos by kind', () => {
    const tree = newDir(0);
    applyLayer(
      tree,
      [
        file('f', 9),
        file('empty', 0),
        link('l', 'symlink', '../x/./y'),
        special('c', 'char'),
        special('b', 'block'),
        special('p', 'fifo'),
      ],
      0,
      'delete',
    );
    expect(tree.children.get('f')).toEqual({ kind: 'file', size: 9, crc, layer: 0 });
    expect(tree.children.get('empty')).toEqual({ kind: 'file', size: 0, crc: null, layer: 0 });
    expect(listing(tree)).toEqual({
      b: 'block @0',
      c: 'char @0',
      empty: 'file 0 @0',
      f: 'file 9 @0',
      l: 'symlink ../x/./y @0',
      p: 'fifo @0',
    });
  });

  it('cleans `./`, doubled and trailing slashes and a leading `/` as Docker does', () => {
    expect(unpack([[file('./a'), file('/b'), file('c//d/'), dir('./e/./f/')]])).toEqual({
      a: 'file 1 @0',
      b: 'file 1 @0',
      c: 'parent dir',
      'c/d': 'file 1 @0',
      e: 'parent dir',
      'e/f': 'dir @0',
    });
  });

  it('refuses a `..` component, even one that stays inside the layer (BAD_DATA)', () => {
    for (const name of ['a/../b', '../x', '/../x', 'a/..']) {
      const error = expectVouchError(() => unpack([[file(name)]]), 'BAD_DATA');
      expect(error.message).toBe(`a layer entry /${name} leaves the layer`);
    }
    const error = expectVouchError(
      () => unpack([[file('a'), link('h', 'hardlink', 'x/../a')]]),
      'BAD_DATA',
    );
    expect(error.message).toBe('a layer entry /x/../a leaves the layer');
  });

  it('puts a directory where a file was and a file where a directory was (its content goes)', () => {
    const lower = [file('x'), dir('y'), file('y/z'), link('s', 'symlink', 'y')];
    expect(unpack([lower, [dir('x'), file('y', 2), dir('s')]])).toEqual({
      s: 'dir @1',
      x: 'dir @1',
      y: 'file 2 @1',
    });
  });

  it('merges a directory into the one there: its content stays, the layer is the new one’s', () => {
    expect(
      unpack([
        [dir('d'), file('d/a')],
        [dir('d/'), file('d/b')],
      ]),
    ).toEqual({
      d: 'dir @1',
      'd/a': 'file 1 @0',
      'd/b': 'file 1 @1',
    });
  });

  it('replaces a file that stands where a parent directory is needed', () => {
    expect(unpack([[file('p')], [file('p/q')]])).toEqual({ p: 'parent dir', 'p/q': 'file 1 @1' });
  });

  it('gives the later of two entries for one path', () => {
    expect(unpack([[file('a', 1), link('a', 'symlink', 't')]])).toEqual({ a: 'symlink t @0' });
  });
});

describe('applyLayer: hard links', () => {
  it('is another name for what its target is: a file, a symlink, a fifo, in this layer or below', () => {
    const tree = newDir(0);
    applyLayer(
      tree,
      [file('dir/f', 4), link('s', 'symlink', 'dir/f'), special('p', 'fifo')],
      0,
      'delete',
    );
    applyLayer(
      tree,
      [
        link('hf', 'hardlink', './dir/f'),
        link('hs', 'hardlink', 's'),
        link('hp', 'hardlink', '/p'),
        file('new', 2),
        link('hn', 'hardlink', 'new'),
      ],
      1,
      'delete',
    );
    expect(tree.children.get('hf')).toEqual({ kind: 'file', size: 4, crc, layer: 1 });
    expect(listing(tree)).toMatchObject({
      hf: 'file 4 @1',
      hs: 'symlink dir/f @1',
      hp: 'fifo @1',
      hn: 'file 2 @1',
    });
  });

  it('is BAD_DATA when its target is missing or a directory', () => {
    for (const [entries, target] of [
      [[link('h', 'hardlink', 'nowhere')], '/nowhere'],
      [[dir('d'), link('h', 'hardlink', 'd')], '/d'],
      [[file('f'), link('h', 'hardlink', 'f/g')], '/f/g'],
      [[link('h', 'hardlink', './')], '/./'],
    ] as const) {
      const error = expectVouchError(() => unpack([[file('x')], entries]), 'BAD_DATA');
      expect(error.message).toBe(
        `layer 2: /h is a hard link to ${target}, which is missing or a directory`,
      );
    }
  });

  it('on overlay2 (a tree per layer) finds no target in a lower layer', () => {
    const tree = newDir(1);
    const error = expectVouchError(
      () => applyLayer(tree, [link('h', 'hardlink', 'f')], 1, 'mark'),
      'BAD_DATA',
    );
    expect(error.message).toBe('layer 2: /h is a hard link to /f, which is missing or a directory');
  });
});

describe('applyLayer: whiteouts (vfs deletes, overlay2 marks)', () => {
  const lower = [file('a.txt'), dir('dir'), file('dir/b'), dir('dir/sub'), file('dir/sub/c')];

  it('deletes a lower file, a lower directory with everything under it, and nothing when absent', () => {
    expect(
      unpack([lower, [file('.wh.a.txt', 0), file('dir/.wh.sub', 0), file('.wh.none', 0)]]),
    ).toEqual({
      dir: 'dir @0',
      'dir/b': 'file 1 @0',
    });
  });

  it('deletes what this layer put there before it, and makes the parent a whiteout needs', () => {
    expect(unpack([[file('x'), file('.wh.x', 0), file('new/.wh.y', 0)]])).toEqual({
      new: 'parent dir',
    });
  });

  it('marks, on overlay2, the path it hides with a whiteout of its own layer', () => {
    expect(unpack([[file('.wh.a.txt', 0), file('dir/sub/.wh.c', 0)]], 'mark')).toEqual({
      'a.txt': 'whiteout @0',
      dir: 'parent dir',
      'dir/sub': 'parent dir',
      'dir/sub/c': 'whiteout @0',
    });
  });
});

describe('applyLayer: opaque directories', () => {
  const lower = [dir('dir'), file('dir/old'), dir('dir/sub'), file('dir/sub/deep'), file('top')];

  it('on vfs hides what lower layers put in it and keeps what its own layer did', () => {
    const upper = [
      dir('dir'),
      file('dir/.wh..wh..opq', 0),
      file('dir/new'),
      dir('dir/sub'),
      file('dir/sub/mine'),
    ];
    expect(unpack([lower, upper])).toEqual({
      dir: 'dir @1',
      'dir/new': 'file 1 @1',
      'dir/sub': 'dir @1',
      'dir/sub/mine': 'file 1 @1',
      top: 'file 1 @0',
    });
  });

  it('keeps what its own layer unpacked before the marker, a directory unpacked again too', () => {
    const upper = [dir('dir'), file('dir/new'), dir('dir/sub'), file('dir/.wh..wh..opq', 0)];
    expect(unpack([lower, upper])).toEqual({
      dir: 'dir @1',
      'dir/new': 'file 1 @1',
      'dir/sub': 'dir @1',
      top: 'file 1 @0',
    });
  });

  it('clears a lower directory this layer only wrote into without an entry for it', () => {
    expect(unpack([lower, [file('dir/sub/mine'), file('dir/.wh..wh..opq', 0)]])).toEqual({
      dir: 'dir @0',
      top: 'file 1 @0',
    });
  });

  it('clears a directory its layer made as a parent before the marker, and what is in it', () => {
    expect(unpack([lower, [file('dir/made/mine'), file('dir/.wh..wh..opq', 0)]])).toEqual({
      dir: 'dir @0',
      top: 'file 1 @0',
    });
  });

  it('at the root clears the lower layers of the whole filesystem', () => {
    expect(
      unpack([lower, [file('.wh..wh..opq', 0), file('/.wh..wh..opq', 0), file('kept')]]),
    ).toEqual({
      kept: 'file 1 @1',
    });
  });

  it('on overlay2 is an extended attribute: nothing in the tree but the directory', () => {
    expect(unpack([[file('dir/.wh..wh..opq', 0), file('dir/new')]], 'mark')).toEqual({
      dir: 'parent dir',
      'dir/new': 'file 1 @0',
    });
  });
});

describe('applyLayer: AUFS metadata', () => {
  /** As an image from Docker's old aufs driver may hold it (moby pkg/archive/whiteouts.go). */
  const aufs = [
    dir('./'),
    file('./.wh..wh.aufs', 0),
    dir('./.wh..wh.plnk/'),
    file('./.wh..wh.plnk/12.34', 10),
    link('./hl', 'hardlink', '.wh..wh.plnk/12.34'),
  ];

  it('is skipped on vfs but for the parents of files, and a hard link into .wh..wh.plnk is a copy', () => {
    const tree = newDir(0);
    applyLayer(tree, aufs, 0, 'delete');
    expect(listing(tree)).toEqual({ '.wh..wh.plnk': 'parent dir', hl: 'file 10 @0' });
    expect(tree.children.get('hl')).toEqual({ kind: 'file', size: 10, crc, layer: 0 });
  });

  it('on overlay2 is a whiteout like any `.wh.` name, and .wh..wh.plnk/ unpacked as it is', () => {
    expect(unpack([aufs], 'mark')).toEqual({
      '.wh..wh.plnk': 'parent dir',
      '.wh..wh.plnk/12.34': 'file 10 @0',
      '.wh.aufs': 'whiteout @0',
      '.wh.plnk': 'whiteout @0',
      hl: 'file 10 @0',
    });
  });

  it('is metadata only at the root and without a leading `/`: elsewhere a whiteout', () => {
    // `.wh.` names that lower layers hold as the parents of their files.
    const lower = [file('.wh.aufs/x'), file('.wh.kept/x'), file('d/.wh.x/y')];
    const upper = [file('/.wh..wh.aufs', 0), file('.wh..wh.kept', 0), file('d/.wh..wh.x', 0)];
    expect(unpack([lower, upper])).toEqual({
      '.wh.kept': 'parent dir',
      '.wh.kept/x': 'file 1 @0',
      d: 'parent dir',
    });
  });

  it('is BAD_DATA for a hard link into .wh..wh.plnk that names no file kept there', () => {
    const error = expectVouchError(
      () => unpack([[dir('.wh..wh.plnk/'), link('hl', 'hardlink', '.wh..wh.plnk/9.9')]]),
      'BAD_DATA',
    );
    expect(error.message).toBe(
      'layer 1: /hl is a hard link to /.wh..wh.plnk/9.9, which is missing or a directory',
    );
  });

  it('makes, on vfs, the parent of a directory in it too (UnpackLayer makes every entry’s parent)', () => {
    expect(unpack([[dir('./.wh..wh.orph/'), dir('./.wh..wh.orph/sub/')]])).toEqual({
      '.wh..wh.orph': 'parent dir',
    });
  });
});

describe('applyLayer: properties', () => {
  /** No whiteouts: a `/` before `.wh..wh.` makes a whiteout of AUFS metadata (above). */
  const segment = fc.stringMatching(/^[a-z][a-z.]{0,5}$/);
  const path = fc.array(segment, { minLength: 1, maxLength: 4 });
  /** Ways of writing one path that clean to it: `./`, `/`, doubled and trailing slashes. */
  const spelled = (parts: readonly string[]) =>
    fc
      .tuple(
        fc.constantFrom('', './', '/', './/'),
        fc.constantFrom('/', '//', '/./'),
        fc.constantFrom('', '/'),
      )
      .map(([lead, sep, trail]) => `${lead}${parts.join(sep)}${trail}`);

  it('gives the same tree for any spelling of the same paths', () => {
    fc.assert(
      fc.property(
        fc.array(
          path.chain((parts) => fc.tuple(fc.constant(parts), spelled(parts), fc.boolean())),
          {
            maxLength: 12,
          },
        ),
        (paths) => {
          const plain = paths.map(([parts, , isDir]) => (isDir ? dir : file)(parts.join('/')));
          const spelt = paths.map(([, name, isDir]) => (isDir ? dir : file)(name));
          for (const whiteouts of ['delete', 'mark'] as const) {
            expect(unpack([spelt], whiteouts)).toEqual(unpack([plain], whiteouts));
          }
        },
      ),
    );
  });
});

describe('shown', () => {
  it('is the path in the image, absolute, with bytes that are not UTF-8 kept', () => {
    expect(shown(Buffer.from('dir/é').toString('latin1'))).toBe('/dir/é');
    expect(shown('a\xff')).toBe('/a\udcff');
  });
});
