/**
 * The layers of vouch as import rules: `npm run lint` (and so `npm test`) fails on an
 * import that crosses one (docs/architecture.md "Layering rules"). dependency-cruiser
 * resolves each import through tsconfig.json, so a rule names the file an import reaches,
 * relative to the repository root, not the text of the import. Type-only imports count:
 * a layer that needs another's types depends on it.
 */

const core = '^agent/core/';
/**
 * The shared platform modules at agent/*.ts (files, lock, config, logger) and agent/workers/
 * (worker threads and their lifecycle).
 */
const platform = '^agent/([^/]+\\.ts$|workers/)';
/**
 * What the publisher and the device both read of content: Docker images, files' digests and
 * the hash pool that computes them.
 */
const content = '^agent/content/';
/** A part's public entry points: the CLI imports device, ledger and hw only through these. */
const deviceEntries = '^agent/device/(docker/|verify/|agent/)?index\\.ts$';
const ledgerEntry = '^agent/ledger/index\\.ts$';
const hwEntry = '^hw/index\\.ts$';
/**
 * Files of this repository, as opposed to npm packages and Node's built-in modules (an
 * import that resolves to nothing is no-unresolvable's).
 */
const project = { pathNot: '^node_modules/', dependencyTypesNot: ['core'], couldNotResolve: false };

/** A rule: files matching `from` may import, of the project, only files matching `allowed`. */
function only(name, comment, from, allowed) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: from },
    to: { ...project, pathNot: [project.pathNot, ...allowed] },
  };
}

module.exports = {
  forbidden: [
    only(
      'core-imports-only-core',
      'core holds the formats and rules both sides share (no I/O): it builds on nothing else of ' +
        'vouch, so the publisher and the device can each import any core module.',
      core,
      [core],
    ),
    {
      name: 'core-does-no-io',
      comment:
        'core is pure (no files, network, processes, threads or timers): of Node it uses ' +
        'node:crypto alone. I/O lives at the edges.',
      severity: 'error',
      from: { path: core },
      to: { dependencyTypes: ['core'], pathNot: '^(node:)?crypto$' },
    },
    only(
      'platform-imports-only-core',
      'The platform modules (agent/*.ts: files, lock, config, logger; agent/workers/) serve ' +
        'every part: they import core and each other, never a part that uses them.',
      platform,
      [core, platform],
    ),
    only(
      'content-imports-only-core-platform-and-hw',
      'content/ is what the publisher and the device both need of files and images, so that ' +
        'signing does not reach into device/: it builds on core, the platform and hw/ (through ' +
        'hw/index.ts: the hash pool is sized by the board).',
      content,
      [core, platform, content, hwEntry],
    ),
    only(
      'hw-imports-only-core',
      'hw/ reads the hardware under a root path it is given, for whoever asks (the hash pool, ' +
        '`vouch hw`): it builds on core alone.',
      '^hw/',
      ['^hw/', core],
    ),
    only(
      'ledger-imports-only-shared',
      'The publisher (ledger/) and the device meet only in the published files and the formats ' +
        'in core: ledger/ imports core, the platform and content/, never device/, hw/ or the CLI.',
      '^agent/ledger/',
      ['^agent/ledger/', core, platform, content],
    ),
    only(
      'device-imports-only-shared-and-hw',
      'The device knows the publisher only by what it publishes: device/ imports core, the ' +
        'platform, content/ and hw/ (through hw/index.ts), never ledger/ or the CLI.',
      '^agent/device/',
      ['^agent/device/', core, platform, content, hwEntry],
    ),
    only(
      'cli-uses-entry-points',
      'The CLI is thin: it imports core, the platform, content/ and its own files, and reaches ' +
        'device/, ledger/ and hw/ only through their public entry points (device/index.ts: the ' +
        'trust state and its sync; device/verify/index.ts: verification on the device; ' +
        'device/docker/index.ts: Docker images), so that their insides can change freely.',
      '^agent/cli/',
      [
        '^agent/cli/',
        '^package\\.json$',
        core,
        platform,
        content,
        deviceEntries,
        ledgerEntry,
        hwEntry,
      ],
    ),
    {
      name: 'only-tests-import-tests',
      comment:
        'test/ may import anything; nothing imports test/ (scripts/ share helpers with the ' +
        'tests through scripts/lib/).',
      severity: 'error',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
    {
      name: 'no-circular',
      comment:
        'Modules form no import cycle, which would make their load order matter. Type-only ' +
        'imports are left out: the command definitions and program.ts share types both ways.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-unresolvable',
      comment:
        'Every import resolves to a file or package: one that did not would escape the rules above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    // Packages' `exports` as the bundler and vitest resolve them (ESM first).
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
    doNotFollow: { path: '^node_modules/' },
    // Fixture trees that break the rules on purpose (test/layers.test.ts).
    exclude: { path: '^test/fixtures/' },
  },
};
