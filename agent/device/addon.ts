import { join } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { configSchema, parseConfig } from '../config';
import { VouchError } from '../core/errors';
import { describeIssues, parseJson } from '../core/json';
import { readExistingFile, writeFileDurably } from '../files';

/**
 * vouch as a Home Assistant add-on (os-image/addon/): at each start, its run.sh makes the
 * agent's configuration from the add-on's options, which the Supervisor writes to
 * /data/options.json (https://developers.home-assistant.io/docs/apps/configuration#app-script),
 * then runs the agent on it. The container's paths are fixed; `prefix` puts them under
 * another directory ('/' in the container, a temp directory in the tests).
 */

/** config.yaml's `ingress_port`: where the Supervisor's ingress proxy connects. */
export const addonIngressPort = 8099;

/** The agent's configuration, written from the options at each start. */
const addonConfigFile = 'data/agent.yaml';

/** The Supervisor writes a few hundred bytes; anything far larger is not its file. */
const maxOptionsBytes = 1024 * 1024;

const { sync, images } = configSchema.shape;

/**
 * The options of config.yaml's `schema`: each checked by the agent's rule for the setting it
 * becomes (without its default: the Supervisor writes every option), so that an error names
 * the option the user set. The enforcement mode applies to every scope and to the images no
 * scope matches.
 */
const addonOptions = z.strictObject({
  mirrors: configSchema.shape.mirrors.unwrap(),
  sync_schedule: sync.unwrap().shape.schedule.unwrap(),
  enforcement: images.unwrap().shape.enforce.unwrap(),
  scopes: images.unwrap().shape.scopes.unwrap().element.omit({ enforce: true }).array().max(1024),
  log_level: configSchema.shape.logLevel.unwrap(),
});

type AddonOptions = z.output<typeof addonOptions>;

/**
 * The agent's configuration for the options: state in /data/state, the trust root and the
 * snapshot inbox in /config (the add-on's public folder, /addon_configs/<repo>_vouch on the
 * host), the status page on the ingress port, the Docker socket the Supervisor mounts with
 * `docker_api`. No `mqtt.url`: the agent asks the Supervisor for its broker.
 */
export function addonConfig(options: AddonOptions, prefix = '/') {
  const at = (path: string) => join(prefix, path);
  return {
    stateDir: at('data/state'),
    logLevel: options.log_level,
    root: at('config/root.json'),
    mirrors: options.mirrors,
    sync: { schedule: options.sync_schedule },
    snapshot: { inbox: at('config/inbox') },
    api: { socket: at('run/vouch/api.sock'), ingress: { port: addonIngressPort } },
    docker: { socket: at('run/docker.sock') },
    images: {
      enforce: options.enforcement,
      scopes: options.scopes.map((scope) => ({ ...scope, enforce: options.enforcement })),
    },
  };
}

/** `<prefix>/data/options.json`, checked; CONFIG_INVALID naming the file and the option. */
export async function readAddonOptions(prefix = '/'): Promise<AddonOptions> {
  const path = join(prefix, 'data/options.json');
  const bytes = await readExistingFile(path, maxOptionsBytes, 'add-on options', 'CONFIG_INVALID');
  const result = addonOptions.safeParse(parseJson(bytes, 'CONFIG_INVALID', path));
  if (!result.success) {
    throw new VouchError('CONFIG_INVALID', `${path}: ${describeIssues(result.error)}`, {
      cause: result.error,
    });
  }
  return result.data;
}

/**
 * `vouch config addon`: the options read and turned into `<prefix>/data/agent.yaml`, which
 * is replaced (atomically) only once it loads; nothing else in /data is touched.
 */
export async function writeAddonConfig(prefix = '/'): Promise<{ readonly path: string }> {
  const path = join(prefix, addonConfigFile);
  const config = addonConfig(await readAddonOptions(prefix), prefix);
  parseConfig(config, path);
  const header =
    '# Written by vouch config addon from options.json at each start: edits are lost.\n';
  await writeFileDurably(path, header + stringify(config));
  return { path };
}
