import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ImageResult } from '../../../agent/device/docker/image';
import {
  alterTarSplitHeader,
  buildScratchImage,
  type Dockerd,
  type ImageFiles,
  layerStorage,
  loadArchive,
  startDockerd,
} from '../../../scripts/lib/dockerd';
import { runCli } from '../../helpers/cli';
import { cliBundle } from '../../helpers/device';
import { imageArchive, tarOf } from '../../helpers/oci';
import { describeWith } from '../../helpers/services';

/**
 * `vouch verify image` against a real dockerd (vfs storage): images built FROM scratch with
 * several layers and an OCI archive made here and `docker load`ed; signed with `vouch sign
 * --image`, logged, published and synced through the CLI like a publisher and a device.
 */

const notary = 'notary@home-assistant.io';
const other = 'other@example.org';
/** An add-on developer, scoped as Home Assistant names its add-ons: ghcr.io/home-assistant/{arch}-addon-{slug}. */
const addons = 'addons@example.org';
const addonScope = 'ghcr.io/home-assistant/*-addon-*';
/** The Home Assistant core image, as the Supervisor pulls it on a Raspberry Pi 5. */
const core = 'ghcr.io/home-assistant/raspberrypi5-64-homeassistant:2025.6.0';
const ha = (name: string) => `ghcr.io/home-assistant/${name}:1`;

interface Report {
  readonly stateDir: string;
  readonly state: string;
  readonly stale: boolean;
  readonly now: string;
  readonly results: ImageResult[];
  readonly exitCode: number;
}

describeWith('docker', 'vouch verify image', () => {
  let daemon: Dockerd;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const ids = new Map<string, string>();
  const file = (name: string) => join(dir, name);
  const cli = async (...argv: string[]) => {
    const result = await runCli([...argv, '--log-level', 'silent'], env);
    expect(result.exitCode, `${argv.join(' ')}: ${result.stderr}${result.stdout}`).toBe(0);
  };
  const verify = async (...argv: string[]) => {
    const result = await runCli(
      ['verify', 'image', ...argv, '--state-dir', file('state'), '--output', 'json'],
      env,
    );
    return { exitCode: result.exitCode, report: JSON.parse(result.stdout) as Report };
  };
  const only = async (...argv: string[]) => {
    const { exitCode, report } = await verify(...argv);
    expect(report.exitCode).toBe(exitCode);
    return { exitCode, result: report.results[0] as ImageResult };
  };
  let signed = 0;
  /** `vouch <command> --image ref` by `signer`; the envelope's path. */
  const sign = async (command: string, signer: string, ref: string, ...extra: string[]) => {
    const out = file(`statement-${signed++}.json`);
    await cli(
      command,
      '--key',
      file(`keys/${signer}.key`),
      '--signer',
      signer,
      '--image',
      ref,
      ...extra,
      '--out',
      out,
    );
    return out;
  };
  const publish = async (statements: string[]) => {
    await cli('log', 'add', file('log'), '--root', file('root.json'), ...statements);
    await cli('log', 'publish', file('log'));
    await cli('sync', '--state-dir', file('state'), '--mirror', `file://${file('log/public')}`);
  };

  beforeAll(async () => {
    daemon = await startDockerd();
    dir = await mkdtemp(join(tmpdir(), 'vouch-verify-image-'));
    env = { DOCKER_HOST: daemon.dockerHost };
    // Three layers each, distinct content, so each image has its own ID.
    for (const name of [
      'trusted',
      'untrusted',
      'unsupported',
      'revoked',
      'unknown',
      'by-other',
      'tamper',
      'later',
      'tree',
    ]) {
      const layers: ImageFiles[] = [
        { 'a.txt': `a of ${name}` },
        { 'b.txt': `b of ${name}` },
        { 'c/d.txt': name },
      ];
      ids.set(name, await buildScratchImage(daemon.docker, ha(name), layers));
    }
    ids.set('plain', await buildScratchImage(daemon.docker, 'plain:1', { 'p.txt': 'plain' }));
    // An OCI image layout (gzip layers) with the manifest.json Docker writes beside it.
    const oci = await imageArchive({
      layers: [{ 'x.txt': 'oci one' }, { 'y.txt': 'oci two' }],
      layout: 'oci',
      gzip: true,
      repoTag: ha('oci'),
    });
    await loadArchive(daemon.docker, await tarOf(oci.entries));
    ids.set('oci', oci.id);

    for (const id of ['root-1', 'log', notary, other, addons]) {
      await cli('keygen', '--signer', id, '--out', file('keys'));
    }
    await cli(
      'root',
      'init',
      '--out',
      file('root.json'),
      '--threshold',
      '1',
      '--root-key',
      file('keys/root-1.pub'),
      '--log-origin',
      'log.example.org/vouch',
      '--log-key',
      file('keys/log.pub'),
      '--expires',
      '30',
    );
    await cli(
      'root',
      'add-signer',
      file('root.json'),
      '--id',
      notary,
      '--key',
      file(`keys/${notary}.pub`),
      '--scope',
      'ghcr.io/home-assistant/**',
    );
    await cli(
      'root',
      'add-signer',
      file('root.json'),
      '--id',
      other,
      '--key',
      file(`keys/${other}.pub`),
    );
    await cli(
      'root',
      'add-signer',
      file('root.json'),
      '--id',
      addons,
      '--key',
      file(`keys/${addons}.pub`),
      '--scope',
      addonScope,
    );
    await cli('root', 'sign', file('root.json'), '--key', file('keys/root-1.key'));
    await cli(
      'log',
      'init',
      file('log'),
      '--origin',
      'log.example.org/vouch',
      '--key',
      file('keys/log.key'),
    );
    const statements = [
      await sign('notarize', notary, ha('trusted')),
      await sign('untrust', notary, ha('untrusted')),
      await sign('unsupport', notary, ha('unsupported')),
      await sign('notarize', notary, ha('revoked')),
      await sign('sign', notary, ha('revoked'), '--status', 'revoked', '--reason', 'key leaked'),
      await sign('notarize', other, ha('by-other')),
      await sign('notarize', notary, ha('tamper')),
      await sign('notarize', notary, ha('later')),
      await sign('notarize', notary, ha('oci')),
      await sign('notarize', other, 'plain:1'),
      await sign('notarize', notary, ha('tree')),
    ];
    await cli('log', 'add', file('log'), '--root', file('root.json'), ...statements);
    await cli('log', 'publish', file('log'));
    await cli(
      'sync',
      '--state-dir',
      file('state'),
      '--root',
      file('root.json'),
      '--mirror',
      `file://${file('log/public')}`,
    );
  }, 300_000);

  afterAll(async () => {
    await daemon?.stop();
  });

  it('gives each status with its exit code, from statements about the image ID', async () => {
    const expected = [
      ['trusted', 'TRUSTED', 0, 'marked trusted by notary@home-assistant.io'],
      ['untrusted', 'UNTRUSTED', 1, 'marked untrusted by notary@home-assistant.io'],
      [
        'unknown',
        'UNKNOWN',
        2,
        'no statement by an authorized signer; images matching ghcr.io/home-assistant/** require a statement by notary@home-assistant.io',
      ],
      ['unsupported', 'UNSUPPORTED', 3, 'marked unsupported by notary@home-assistant.io'],
      ['revoked', 'REVOKED', 4, 'marked revoked by notary@home-assistant.io'],
    ] as const;
    for (const [name, status, code, reason] of expected) {
      const { exitCode, result } = await only(ha(name));
      expect(exitCode, name).toBe(code);
      expect(result).toMatchObject({
        ref: ha(name),
        id: ids.get(name),
        names: [ha(name)],
        repoDigests: [],
        requirement: {
          match: 'ghcr.io/home-assistant/**',
          signer: notary,
          required: true,
          mode: 'warn',
        },
        status,
        code,
      });
      expect(result.reason.startsWith(reason), result.reason).toBe(true);
      expect(result.error).toBeUndefined();
    }
    const { result } = await only(ha('revoked'));
    expect(result).toMatchObject({ signer: notary, logIndex: 4 });
    expect(result.reason).toMatch(/: key leaked$/);
  });

  it('reports several images with the worst status as the exit code, in text too', async () => {
    const { exitCode, report } = await verify(ha('trusted'), ha('unsupported'), ha('unknown'));
    expect(exitCode).toBe(3);
    expect(report).toMatchObject({
      stateDir: file('state'),
      state: 'ok',
      stale: false,
      exitCode: 3,
    });
    expect(report.results.map((result) => result.status)).toEqual([
      'TRUSTED',
      'UNSUPPORTED',
      'UNKNOWN',
    ]);
    const text = await runCli(
      ['verify', 'image', ha('trusted'), ha('revoked'), '--state-dir', file('state')],
      env,
    );
    expect(text.exitCode).toBe(4);
    expect(text.stdout).toMatch(
      new RegExp(`^TRUSTED ${ha('trusted')} ${ids.get('trusted')}: marked trusted`),
    );
    expect(text.stdout).toMatch(new RegExp(`\nREVOKED ${ha('revoked')} ${ids.get('revoked')}: `));
  });

  it('finds an image by its ID or a short ID, and names it by its tags', async () => {
    const id = ids.get('trusted') as string;
    for (const ref of [id, id.slice(7), id.slice(7, 19)]) {
      const { exitCode, result } = await only(ref);
      expect(exitCode).toBe(0);
      expect(result).toMatchObject({ ref, id, names: [ha('trusted')], status: 'TRUSTED' });
    }
  });

  it('requires the scope’s signer: another authorized signer does not count for it', async () => {
    const { exitCode, result } = await only(ha('by-other'));
    expect(exitCode).toBe(2);
    expect(result.status).toBe('UNKNOWN');
    expect(result.reason).toMatch(/require a statement by notary@home-assistant\.io$/);
    // The same statement counts once no scope asks for a particular signer.
    const config = file('open.yaml');
    await writeFile(config, 'images:\n  scopes: []\n');
    const open = await only(ha('by-other'), '--config', config);
    expect(open.exitCode).toBe(0);
    expect(open.result).toMatchObject({
      status: 'TRUSTED',
      signer: other,
      requirement: { match: null, signer: null, required: false },
    });
    // An image no scope matches: any authorized signer; normalized names.
    const plain = await only('plain:1');
    expect(plain.result).toMatchObject({
      status: 'TRUSTED',
      signer: other,
      names: ['docker.io/library/plain:1'],
      requirement: { match: null, signer: null, required: false, mode: 'warn' },
    });
  });

  it('verifies an OCI archive that was docker load-ed, and --deep checks it', async () => {
    const { exitCode, result } = await only(ha('oci'), '--deep');
    expect(exitCode).toBe(0);
    expect(result).toMatchObject({ id: ids.get('oci'), status: 'TRUSTED' });
    // dockerd 20.10 (here) exports in the legacy layout, whatever the image came in.
    expect(result.deep).toMatchObject({ matches: true, layers: [{}, {}] });
  });

  it('--deep: the config and every layer of an intact image match its ID', async () => {
    const inspect = await daemon.docker.getImage(ha('trusted')).inspect();
    const { exitCode, result } = await only(ha('trusted'), '--deep');
    expect(exitCode).toBe(0);
    expect(result.status).toBe('TRUSTED');
    expect(result.deep).toEqual({
      matches: true,
      layout: 'docker',
      // A file per layer (512-byte header, content block, 1 KiB end); the third has c/ too.
      layers: inspect.RootFS.Layers?.map((diffId, i) => ({ diffId, bytes: i === 2 ? 2560 : 2048 })),
    });
  });

  it('--deep: a file changed in a layer on disk is UNTRUSTED (dockerd stops the export)', async () => {
    const layerDir = (await layerStorage(daemon.docker, ha('tamper'), 1)).dir;
    const path = join(layerDir, 'b.txt');
    expect(await readFile(path, 'utf8')).toBe('b of tamper');
    // Before: the image is intact.
    expect((await only(ha('tamper'), '--deep')).result.status).toBe('TRUSTED');
    await writeFile(path, 'B OF TAMPER');
    // Without --deep nothing reads the content: the image ID still has its statement.
    expect((await only(ha('tamper'))).result.status).toBe('TRUSTED');
    const { exitCode, result } = await only(ha('tamper'), '--deep');
    expect(exitCode).toBe(1);
    expect(result).toMatchObject({
      status: 'UNTRUSTED',
      code: 1,
      reason: 'content does not match image ID: file integrity checksum failed for "b.txt"',
      deep: { matches: false, layers: [] },
    });
    expect(result.error).toBeUndefined();
    await writeFile(path, 'b of tamper');
    expect((await only(ha('tamper'), '--deep')).result.status).toBe('TRUSTED');
  });

  it('--deep: a file deleted from a layer on disk is UNTRUSTED (dockerd cannot rebuild it)', async () => {
    const layerDir = (await layerStorage(daemon.docker, ha('tamper'), 1)).dir;
    const path = join(layerDir, 'b.txt');
    await rm(path);
    try {
      const { exitCode, result } = await only(ha('tamper'), '--deep');
      expect(exitCode).toBe(1);
      expect(result.status).toBe('UNTRUSTED');
      expect(result.reason).toBe(
        `content does not match image ID: open ${path}: no such file or directory`,
      );
      expect(result.error).toBeUndefined();
    } finally {
      await writeFile(path, 'b of tamper');
    }
    expect((await only(ha('tamper'), '--deep')).result.status).toBe('TRUSTED');
  });

  it('--deep: a layer whose rebuilt tar does not hash to its diff_id is UNTRUSTED', async () => {
    // Edit one tar header in the layer's tar-split record: no file changes, the tar does.
    const { tarSplit, diffId } = await layerStorage(daemon.docker, ha('tamper'), 1);
    const original = await alterTarSplitHeader(tarSplit);
    try {
      const { exitCode, result } = await only(ha('tamper'), '--deep');
      expect(exitCode).toBe(1);
      // dockerd 20.10 checks the digest itself before it answers (layer store
      // verifiedReadCloser); a streaming dockerd leaves it to our own comparison.
      expect(result.reason).toBe(
        `content does not match image ID: could not verify layer data for: ${diffId}`,
      );
    } finally {
      await writeFile(tarSplit, original);
    }
    expect((await only(ha('tamper'), '--deep')).result.status).toBe('TRUSTED');
  });

  it('--deep: a file added to a layer directory is not in the export, and not caught', async () => {
    const layerDir = (await layerStorage(daemon.docker, ha('tamper'), 2)).dir;
    await writeFile(join(layerDir, 'added.txt'), 'not in any layer record');
    const { result } = await only(ha('tamper'), '--deep');
    expect(result.status).toBe('TRUSTED');
    expect(result.deep?.matches).toBe(true);
  });

  it('--tree: the files of an intact image are what its layers recorded', async () => {
    const diffIds = (await daemon.docker.getImage(ha('tree')).inspect()).RootFS.Layers ?? [];
    const { exitCode, result } = await only(ha('tree'), '--tree');
    expect(exitCode).toBe(0);
    expect(result.status).toBe('TRUSTED');
    expect(result.tree).toEqual({
      matches: true,
      driver: 'vfs',
      layers: diffIds.map((diffId) => ({ diffId, added: [], removed: [], changed: [] })),
    });
    const text = await runCli(
      ['verify', 'image', ha('tree'), '--tree', '--state-dir', file('state')],
      env,
    );
    expect(text.stdout).toMatch(/ \(files on disk match: 3 layers, vfs storage\)\n?$/);
  });

  it('--tree: files added, removed or changed in a layer directory are UNTRUSTED (built CLI)', async () => {
    const { dir, diffId } = await layerStorage(daemon.docker, ha('tree'), 2);
    await writeFile(join(dir, 'c/added.txt'), 'not in any layer record');
    await rm(join(dir, 'b.txt'));
    await writeFile(join(dir, 'c/d.txt'), 'TREE');
    const run = (...argv: string[]) => {
      const child = spawnSync(
        process.execPath,
        [
          cliBundle,
          'verify',
          'image',
          ha('tree'),
          ...argv,
          '--state-dir',
          file('state'),
          '-o',
          'json',
        ],
        { encoding: 'utf8', env },
      );
      const report = JSON.parse(child.stdout) as Report;
      expect(report.exitCode).toBe(child.status);
      return { exitCode: child.status, result: report.results[0] as ImageResult };
    };
    const finding =
      'layer 3 of 3 differs on disk: 1 added (/c/added.txt), 1 removed (/b.txt), 1 changed (/c/d.txt)';
    const tree = run('--tree');
    expect(tree.exitCode).toBe(1);
    expect(tree.result).toMatchObject({ status: 'UNTRUSTED', code: 1, reason: finding });
    expect(tree.result.tree?.matches).toBe(false);
    expect(tree.result.tree?.layers[2]).toEqual({
      diffId,
      added: ['/c/added.txt'],
      removed: ['/b.txt'],
      changed: ['/c/d.txt'],
    });
    // With --deep: dockerd stops the export on the changed file of the layer's own record;
    // the added file and the removed one (layer 2's) it does not see.
    const both = run('--deep', '--tree');
    expect(both.exitCode).toBe(1);
    expect(both.result.reason).toBe(
      `content does not match image ID: file integrity checksum failed for "c/d.txt"; ${finding}`,
    );
    expect(both.result).toMatchObject({ deep: { matches: false }, tree: { matches: false } });
    await writeFile(join(dir, 'c/d.txt'), 'tree');
    expect(run('--deep').result.status).toBe('TRUSTED');
    await writeFile(join(dir, 'b.txt'), 'b of tree');
    await rm(join(dir, 'c/added.txt'));
    expect(run('--tree').exitCode).toBe(0);
  });

  it("--deep --tree: one check's finding stands when the other cannot run", async () => {
    const { dir, tarSplit } = await layerStorage(daemon.docker, ha('tree'), 2);
    // A layer's cache-id file unreadable as one: the tree check cannot run, while dockerd
    // (which keeps its layers in memory) still exports and finds the changed file.
    const cacheId = join(dirname(tarSplit), 'cache-id');
    const original = await readFile(cacheId);
    await writeFile(cacheId, 'not a cache ID');
    await writeFile(join(dir, 'c/d.txt'), 'TREE');
    try {
      const alone = await only(ha('tree'), '--tree');
      expect(alone.exitCode).toBe(65);
      expect(alone.result).toMatchObject({ status: null, error: { code: 'BAD_DATA' } });
      const { exitCode, result } = await only(ha('tree'), '--deep', '--tree');
      expect(exitCode).toBe(1);
      expect(result).toMatchObject({
        status: 'UNTRUSTED',
        reason: 'content does not match image ID: file integrity checksum failed for "c/d.txt"',
        deep: { matches: false },
      });
      expect(result.tree).toBeUndefined();
      expect(result.error).toBeUndefined();
    } finally {
      await writeFile(cacheId, original);
      await writeFile(join(dir, 'c/d.txt'), 'tree');
    }
    expect((await only(ha('tree'), '--deep', '--tree')).result.status).toBe('TRUSTED');
  });

  it('--tree: a layer record it cannot read is could not check, not UNTRUSTED', async () => {
    const { tarSplit } = await layerStorage(daemon.docker, ha('tree'), 0);
    const original = await readFile(tarSplit);
    await writeFile(tarSplit, 'not gzip');
    try {
      const { exitCode, result } = await only(ha('tree'), '--tree');
      expect(exitCode).toBe(65);
      expect(result).toMatchObject({ status: null, code: null, error: { code: 'BAD_DATA' } });
      expect(result.reason).toBe(
        `could not check: tar-split record ${tarSplit}: incorrect header check`,
      );
    } finally {
      await writeFile(tarSplit, original);
    }
  });

  it('a revoked image whose content does not match stays REVOKED (4), with both reasons', async () => {
    const { dir } = await layerStorage(daemon.docker, ha('revoked'), 1);
    const path = join(dir, 'b.txt');
    await writeFile(path, 'B OF REVOKED');
    try {
      const revoked = 'marked revoked by notary@home-assistant.io';
      const deep = 'content does not match image ID: file integrity checksum failed for "b.txt"';
      const tree = 'layer 2 of 3 differs on disk: 0 added, 0 removed, 1 changed (/b.txt)';
      for (const [check, finding] of [
        ['--deep', deep],
        ['--tree', tree],
      ] as const) {
        const { exitCode, result } = await only(ha('revoked'), check);
        expect(exitCode, check).toBe(4);
        expect(result, check).toMatchObject({
          status: 'REVOKED',
          code: 4,
          signer: notary,
          logIndex: 4,
        });
        expect(result.reason, check).toMatch(new RegExp(`^${revoked}.*: key leaked; `));
        expect(result.reason.endsWith(`; ${finding}`), result.reason).toBe(true);
        const text = await runCli(
          ['verify', 'image', ha('revoked'), check, '--state-dir', file('state')],
          env,
        );
        expect(text.exitCode).toBe(4);
        expect(text.stdout).toContain(
          `REVOKED ${ha('revoked')} ${ids.get('revoked')}: ${result.reason}`,
        );
      }
      // Both findings, after the statement's reason.
      const { result } = await only(ha('revoked'), '--deep', '--tree');
      expect(result.reason.endsWith(`; ${deep}; ${tree}`), result.reason).toBe(true);
    } finally {
      await writeFile(path, 'b of revoked');
    }
    expect((await only(ha('revoked'), '--deep', '--tree')).result).toMatchObject({
      status: 'REVOKED',
      deep: { matches: true },
      tree: { matches: true },
    });
  });

  it('flips to REVOKED once a revocation is synced', async () => {
    expect((await only(ha('later'))).result.status).toBe('TRUSTED');
    await publish([
      await sign('sign', notary, ha('later'), '--status', 'revoked', '--reason', 'CVE'),
    ]);
    const { exitCode, result } = await only(ha('later'));
    expect(exitCode).toBe(4);
    expect(result.reason).toMatch(/: CVE$/);
  });

  it('an add-on signer cannot vouch for the Home Assistant core image: refused by the log, ignored by the device', async () => {
    const id = await buildScratchImage(daemon.docker, core, { 'core.txt': 'core' });
    // Named as the core image: the log refuses it, and logs nothing of the batch.
    const asCore = await sign('notarize', addons, core);
    const refused = await runCli(
      ['log', 'add', file('log'), '--root', file('root.json'), asCore, '-o', 'json'],
      env,
    );
    expect(refused.exitCode).toBe(65);
    expect(JSON.parse(refused.stdout).error).toMatchObject({
      code: 'SIGNER_OUT_OF_SCOPE',
      message: expect.stringContaining(`signer ${addons} may not sign ${core}`),
    });
    // The core image's ID under names the scope does cover: its own add-on, and the core
    // repository under a tag ending in -addon-… (a scope's * spans the tag). The log takes
    // both; a device asks whether the signer may speak for the name it checks.
    const digest = `sha256:${id.slice('sha256:'.length)}`;
    const under = async (name: string) => {
      const out = file(`statement-${signed++}.json`);
      await cli(
        'sign',
        '--key',
        file(`keys/${addons}.key`),
        '--signer',
        addons,
        '--digest',
        digest,
        '--name',
        name,
        '--out',
        out,
      );
      return out;
    };
    await publish([
      await under('ghcr.io/home-assistant/aarch64-addon-ssh:9.14'),
      await under('ghcr.io/home-assistant/raspberrypi5-64-homeassistant:2025.6.0-addon-1'),
    ]);
    // The default policy wants the notary for ghcr.io/home-assistant/**.
    const strict = await only(core);
    expect(strict.exitCode).toBe(2);
    expect(strict.result).toMatchObject({ id, status: 'UNKNOWN', signer: null });
    // With no scope rule, any signer the root authorizes for the core image's name counts:
    // not the add-on signer, whose statements are ignored with the reason.
    const config = file('open-addons.yaml');
    await writeFile(config, 'images:\n  scopes: []\n');
    const open = await only(core, '--config', config);
    expect(open.exitCode).toBe(2);
    expect(open.result).toMatchObject({ status: 'UNKNOWN', signer: null });
    expect(open.result.ignored.map((entry) => [entry.signer, entry.code, entry.reason])).toEqual([
      [addons, 'SIGNER_OUT_OF_SCOPE', `signer ${addons} may not speak for ${core}`],
      [addons, 'SIGNER_OUT_OF_SCOPE', `signer ${addons} may not speak for ${core}`],
    ]);
    // A digest looked up with no name counts any authorized signer under the name its
    // statement gives (docs/security.md "A signer key holder").
    const byDigest = await runCli(
      ['verify', 'digest', digest, '--state-dir', file('state'), '-o', 'json'],
      env,
    );
    expect(JSON.parse(byDigest.stdout).results[0]).toMatchObject({
      status: 'TRUSTED',
      signer: addons,
    });
    // The Supervisor's call, for the notary: nothing.
    const supervisor = await runCli(
      [
        'authenticate',
        '--signerID',
        notary,
        '--hash',
        digest,
        '--state-dir',
        file('state'),
        '-o',
        'json',
      ],
      env,
    );
    expect(supervisor.exitCode).toBe(2);
    expect(JSON.parse(supervisor.stdout)).toMatchObject({ statusName: 'UNKNOWN', verified: false });
  });

  it('cannot check without trust state, or an image Docker does not have', async () => {
    const empty = await runCli(
      ['verify', 'image', ha('trusted'), '--state-dir', file('none'), '--output', 'json'],
      env,
    );
    expect(empty.exitCode).toBe(69);
    const report = JSON.parse(empty.stdout) as Report;
    expect(report.state).toBe('missing');
    expect(report.results[0]).toMatchObject({
      status: null,
      id: ids.get('trusted'),
      error: { code: 'NO_TRUST_STATE' },
    });
    const { exitCode, result } = await only('ghcr.io/home-assistant/nowhere:1');
    expect(exitCode).toBe(65);
    expect(result).toMatchObject({
      status: null,
      id: null,
      names: ['ghcr.io/home-assistant/nowhere:1'],
      requirement: { signer: notary },
      error: { code: 'IMAGE_NOT_FOUND' },
    });
  });

  // Last: it stops the daemon.
  it('could not check, not UNTRUSTED, when dockerd is down (exit 69)', async () => {
    await daemon.stop();
    for (const check of [[], ['--deep'], ['--tree']]) {
      const { exitCode, result } = await only(ha('trusted'), ...check);
      expect(exitCode).toBe(69);
      expect(result).toMatchObject({ status: null, code: null, error: { code: 'UNAVAILABLE' } });
      expect(result.reason).toMatch(/^could not check: cannot ask Docker about /);
    }
  });
});
