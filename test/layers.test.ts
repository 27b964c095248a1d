import { join } from 'node:path';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseConfig from 'dependency-cruiser/config-utl/extract-depcruise-config';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

/**
 * The layer rules of `.dependency-cruiser.cjs` (what `npm run lint` enforces) run on
 * test/fixtures/layers, a miniature of the repository in which each `breaks-*` file crosses
 * one rule and every other import is allowed: each rule must report exactly its fixture.
 */

const repository = join(import.meta.dirname, '..');
const fixtures = join(repository, 'test', 'fixtures', 'layers');

async function cruiseFixtures() {
  const config = await extractDepcruiseConfig(join(repository, '.dependency-cruiser.cjs'));
  const { output } = await cruise(
    ['agent', 'hw', 'scripts', 'test'],
    {
      ...config.options,
      // The project's lint skips the fixtures; here they are what is cruised.
      exclude: undefined,
      baseDir: fixtures,
      validate: true,
      ruleSet: { forbidden: config.forbidden ?? [] },
    },
    {},
    { tsConfig: extractTSConfig(join(repository, 'tsconfig.json')) },
  );
  const { summary } = output as ICruiseResult;
  return {
    rules: (config.forbidden ?? []).map((rule) => rule.name),
    violations: summary.violations.map(({ rule, from, to }) => `${rule.name}: ${from} → ${to}`),
  };
}

describe('layer rules', () => {
  it('each rule reports its fixture, and nothing the layers allow', async () => {
    const { violations } = await cruiseFixtures();
    expect(violations.sort()).toEqual([
      'cli-uses-entry-points: agent/cli/breaks-cli.ts → agent/device/verify/pool.ts',
      'content-imports-only-core-platform-and-hw: agent/content/breaks-content.ts → agent/device/store/state.ts',
      'core-does-no-io: agent/core/breaks-io.ts → fs',
      'core-imports-only-core: agent/core/breaks-core.ts → agent/files.ts',
      'device-imports-only-shared-and-hw: agent/device/breaks-hw-entry.ts → hw/profile.ts',
      'device-imports-only-shared-and-hw: agent/device/sync/breaks-device.ts → agent/ledger/index.ts',
      'hw-imports-only-core: hw/breaks-hw.ts → agent/files.ts',
      'ledger-imports-only-shared: agent/ledger/breaks-ledger.ts → agent/device/index.ts',
      // A runtime cycle; the type-only one (types-a.ts ↔ types-b.ts) is allowed.
      'no-circular: agent/core/cycle-a.ts → agent/core/cycle-b.ts',
      'no-unresolvable: agent/core/breaks-unresolvable.ts → ./nowhere',
      'only-tests-import-tests: scripts/breaks-scripts.ts → test/helper.ts',
      'platform-imports-only-core: agent/breaks-platform.ts → agent/device/index.ts',
    ]);
  });

  it('has a fixture for every rule it enforces', async () => {
    const { rules, violations } = await cruiseFixtures();
    const reported = new Set(violations.map((violation) => violation.split(':')[0]));
    expect(rules.filter((rule) => !reported.has(rule))).toEqual([]);
  });
});
