import type Docker from 'dockerode';
import { dockerClient } from '../../content/docker';
import { exitCodeOf } from '../../core/exit-codes';
import { safe } from '../../core/text';
import { deepPool, type ImageResult, verifyImage } from '../../device/docker';
import { type OpenedTrust, openTrust } from '../../device/verify';
import type { Context } from '../context';
import { describeState } from './verify';

interface ImageOptions {
  readonly deep?: boolean;
  readonly tree?: boolean;
}

export async function verifyImages(ctx: Context, refs: string[], options: ImageOptions) {
  // dockerode and, for --deep, the hash pool's workers load while the trust state does.
  const starting = options.deep ? deepPool() : undefined;
  starting?.catch(() => {}); // awaited below: a failure is not unhandled meanwhile
  const results: ImageResult[] = [];
  let trust: OpenedTrust;
  try {
    let docker: Docker;
    [trust, docker] = await Promise.all([
      openTrust(ctx.config.stateDir, ctx.config.sync.maxAge),
      dockerClient(ctx.io.env, ctx.config.docker.socket),
    ]);
    const pool = await starting;
    // One at a time: exports of several images would only compete for the same disk.
    for (const ref of refs) {
      results.push(
        await verifyImage(docker, trust.state, ref, {
          policy: ctx.config.images,
          now: trust.now,
          ...(options.deep && { deep: true }),
          ...(options.tree && { tree: true }),
          ...(pool && { pool }),
          ...(trust.error && { stateError: trust.error }),
        }),
      );
    }
  } finally {
    await (await starting?.catch(() => undefined))?.close();
  }
  const exitCode = exitCodeOf(results);
  const lines = results.map((result) => {
    const id = result.id ? ` ${result.id}` : '';
    const deep = result.deep?.matches
      ? ` (content matches: config and ${result.deep.layers.length} layers, ${result.deep.layout} layout)`
      : '';
    const tree = result.tree?.matches
      ? ` (files on disk match: ${result.tree.layers.length} layers, ${result.tree.driver} storage)`
      : '';
    return safe`${result.status ?? 'COULD NOT CHECK'} ${result.ref}${id}: ${result.error?.message ?? result.reason}${deep}${tree}`;
  });
  const report = { ...trust.summary, results };
  return {
    exitCode,
    data: { ...report, exitCode },
    text: describeState(lines, report).join('\n'),
  };
}
