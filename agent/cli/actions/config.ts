import { stringify } from 'yaml';
import type { Context } from '../context';
import { ExitCode } from '../exit';

export function config(ctx: Context) {
  return { exitCode: ExitCode.OK, data: ctx.config, text: stringify(ctx.config) };
}
