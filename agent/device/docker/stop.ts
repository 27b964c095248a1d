import type Docker from 'dockerode';
import { dockerError } from '../../content/docker';
import { VouchError } from '../../core/errors';
import { type Supervisor, supervisorGet, supervisorPost } from '../supervisor';
import type { ContainerRef } from './enforce';

/** How enforcement stops one container; throws a VouchError when it cannot. */
export type StopContainer = (container: ContainerRef) => Promise<void>;

/** The Supervisor's way in a Home Assistant add-on, else Docker's. */
export function containerStopper(
  docker: Docker,
  supervisor: Supervisor | undefined,
): StopContainer {
  return supervisor ? supervisorStopper(supervisor, docker) : dockerStopper(docker);
}

/** Through the Docker Engine, with the container's own stop signal and timeout. */
export function dockerStopper(docker: Docker): StopContainer {
  return async (container) => {
    try {
      await docker.getContainer(container.id).stop();
    } catch (error) {
      // 304: already stopped. 404: already gone. Either way it does not run.
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== 304 && status !== 404) {
        throw dockerError(error, 'Docker refused', container.id);
      }
    }
  };
}

/**
 * In a Home Assistant add-on: what the Supervisor runs is stopped through the Supervisor,
 * so that it stays stopped. A `docker stop` behind its back is a container that died, and
 * the Supervisor's watchdog starts it again; `POST /addons/<slug>/stop` and `POST
 * /core/stop` mark the stop as the user's (supervisor/apps/app.py `stop`, `_manual_stop`).
 * They need `hassio_role: manager` (supervisor/api/middleware/security.py). Containers are
 * named by supervisor/docker/app.py `slug_to_name` (`app_<slug>`, `addon_<slug>` before
 * 2026) and homeassistant.py (`homeassistant`). Never stopped: the add-on's own container,
 * and the Supervisor's and its plugins' (`hassio_*`), which the host's systemd and the
 * Supervisor start again at once. Any other container goes through Docker.
 */
export function supervisorStopper(supervisor: Supervisor, docker: Docker): StopContainer {
  const throughDocker = dockerStopper(docker);
  let ownSlug: Promise<string> | undefined;
  return async (container) => {
    const name = container.name;
    if (name === 'homeassistant') {
      await supervisorPost(supervisor, '/core/stop', 'stop Home Assistant Core');
      return;
    }
    if (name.startsWith('hassio_')) {
      throw new VouchError(
        'STOP_REFUSED',
        `${name} is the Supervisor's and is not stopped: the Supervisor starts it again at ` +
          'once; update or repair it through the Supervisor',
      );
    }
    const slug = /^(?:app|addon)_(.+)$/.exec(name)?.[1];
    if (slug === undefined) return throughDocker(container);
    ownSlug ??= supervisorGet(supervisor, '/addons/self/info', 'add-on of its own').then((info) =>
      String(info.slug),
    );
    // Asked once; a failed answer is asked again at the next stop.
    const own = await ownSlug.catch((error: unknown) => {
      ownSlug = undefined;
      throw error;
    });
    if (slug === own) {
      throw new VouchError(
        'STOP_REFUSED',
        `${name} is vouch's own add-on and is not stopped by itself: update or uninstall it`,
      );
    }
    await supervisorPost(supervisor, `/addons/${slug}/stop`, `stop add-on ${slug}`);
  };
}
