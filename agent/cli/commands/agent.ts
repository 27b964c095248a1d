import { Command } from 'commander';
import { examples } from '../help';
import { runsItself } from '../options';
import type { Act } from '../program';

export function agentCommand(act: Act): Command {
  const agent = new Command('agent')
    .description(
      'run the device agent in the foreground until SIGTERM or SIGINT: scheduled syncs ' +
        '(sync.schedule), the Docker watcher with enforcement, the snapshot inbox ' +
        '(snapshot.inbox), and the local API on api.socket (status, verify, verdicts, sync, ' +
        'events, metrics: docs/agent.md); SIGHUP reloads the configuration. Logs are JSON ' +
        'lines on stderr',
    )
    .addHelpText(
      'after',
      examples('vouch agent --config /etc/vouch/agent.yaml', 'vouch agent --log-level debug'),
    )
    .action(act(async () => (await import('../actions/agent')).agent));
  runsItself.add(agent);
  agent
    .command('status')
    .description("show a running agent's view through its API: trust state, services, hashing")
    .addHelpText('after', examples('vouch agent status', 'vouch agent status -o json'))
    .action(act(async () => (await import('../actions/agent')).agentStatus));
  return agent;
}
