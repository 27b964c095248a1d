import { Command } from 'commander';
import { examples } from '../help';
import { repeatable } from '../options';
import type { Act } from '../program';

export function configCommand(act: Act): Command {
  const config = new Command('config')
    .description(
      'print the effective configuration (vouch config), or write a starting one (vouch config init)',
    )
    .addHelpText(
      'after',
      examples('vouch config', 'vouch config init --mirror https://example.org/log/'),
    );
  config
    .command('show', { isDefault: true })
    .description(
      'print the effective configuration: defaults, then the config file, then VOUCH_* ' +
        'variables, then flags (the default)',
    )
    .addHelpText('after', examples('vouch config', 'vouch config -o json --config agent.yaml'))
    .action(act(async () => (await import('../actions/config')).config));
  config
    .command('init')
    .description(
      'write a commented starting configuration: every setting with its default, the given ' +
        'root and mirrors set; refuses to replace a file (check it with vouch config --config FILE)',
    )
    .option(
      '--root <root>',
      'the first trusted root (signed root file), stored as an absolute path',
    )
    .option(
      '--mirror <url>',
      'a log mirror: http(s):// or file:// (repeat for failover)',
      repeatable,
    )
    .option('--out <file>', 'the file to write (default /etc/vouch/agent.yaml)')
    .addHelpText(
      'after',
      examples(
        ['vouch config init --root /etc/vouch/root.json', '--mirror https://example.org/log/'],
        'vouch config init --out agent.yaml --mirror file:///media/usb/log/',
      ),
    )
    .action(act(async () => (await import('../actions/config')).configInit));
  config
    .command('addon')
    .description(
      "write the agent's configuration, DIR/data/agent.yaml, from a Home Assistant add-on's " +
        'options, DIR/data/options.json (the add-on runs this at each start: os-image/addon/)',
    )
    .option(
      '--prefix <dir>',
      "the container's root: /data, /config and /run are under it (a test's own directory)",
      '/',
    )
    .addHelpText('after', examples('vouch config addon', 'vouch config addon --prefix /tmp/addon'))
    .action(act(async () => (await import('../actions/config')).configAddon));
  return config;
}
