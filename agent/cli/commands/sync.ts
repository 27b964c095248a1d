import { Command } from 'commander';
import { examples } from '../help';
import { repeatable } from '../options';
import type { Act } from '../program';

export function syncCommand(act: Act): Command {
  return new Command('sync')
    .description(
      'bring the device state up to the newest verified checkpoint of the log, from mirrors ' +
        'tried in order (root updates, checkpoint and witnesses, new entries, signatures); a ' +
        'damaged state is repaired from them, checked against its surviving checkpoint',
    )
    .option(
      '--root <root>',
      'the first trusted root (signed root file), for a device without state',
    )
    .option(
      '--mirror <url>',
      'a log mirror: http(s):// or file:// (repeat for failover; replaces the configured ' +
        'list); remembered in the state directory once a sync from them succeeds, for a ' +
        'plain vouch sync when the configuration lists no mirrors',
      repeatable,
    )
    .option('--watch', 'keep syncing on the configured schedule (sync.schedule) until stopped')
    .addHelpText(
      'after',
      examples(
        'vouch sync --root root.json --mirror https://example.org/log/',
        'vouch sync',
        'vouch sync --watch',
      ),
    )
    .action(act(async () => (await import('../actions/sync')).sync));
}
