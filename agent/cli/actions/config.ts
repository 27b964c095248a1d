import { dirname, resolve } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { parseConfig, systemConfigPath } from '../../config';
import { configTemplate } from '../../config-template';
import { ExitCode } from '../../core/exit-codes';
import { requireMirrorUrls } from '../../core/mirror-url';
import { escapeLines } from '../../core/text';
import { makeDirectory, writeFileDurably } from '../../files';
import type { Context } from '../context';

export function config(ctx: Context) {
  return { exitCode: ExitCode.OK, data: ctx.config, text: escapeLines(stringify(ctx.config)) };
}

interface InitFlags {
  readonly root?: string;
  readonly mirror?: string[];
  readonly out?: string;
}

/** `vouch config init`: a commented starting configuration, which must load as it is. */
export async function configInit(_ctx: Context, flags: InitFlags) {
  const out = resolve(flags.out ?? systemConfigPath);
  requireMirrorUrls(flags.mirror ?? []);
  const given = {
    ...(flags.root !== undefined && { root: resolve(flags.root) }),
    ...(flags.mirror && { mirrors: flags.mirror }),
  };
  const text = configTemplate(out, given);
  // What is written must load: the template and the schema cannot drift apart.
  parseConfig(parseYaml(text) ?? {}, out);
  await makeDirectory(dirname(out));
  await writeFileDurably(out, text, { exclusive: true });
  return {
    exitCode: ExitCode.OK,
    data: { out, ...given },
    text: `wrote ${out}; check it with: vouch config --config ${out}`,
  };
}

/** `vouch config addon`: the agent's configuration from a Home Assistant add-on's options. */
export async function configAddon(_ctx: Context, flags: { readonly prefix: string }) {
  // Loaded here: `vouch config` and `config init` need nothing of the device.
  const { writeAddonConfig } = await import('../../device');
  const { path } = await writeAddonConfig(flags.prefix);
  return { exitCode: ExitCode.OK, data: { out: path }, text: `wrote ${path}` };
}
