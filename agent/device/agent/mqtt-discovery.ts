import { type StatusName, severity } from '../../core/status';
import { formatUtcTime } from '../../core/time';
import type { Stamped } from './events';
import type { Health } from './health';
import { isViolation, type Overall, overallStates } from './overall';

/**
 * What the agent publishes over MQTT, computed from its state with no I/O (mqtt.ts sends
 * it). Home Assistant's device-based discovery (HA 2024.12+,
 * https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload): one retained
 * message on `<prefix>/device/<node id>/config` with the device (`dev`), the origin (`o`)
 * and its components (`cmps`). Every payload is JSON built in a fixed key order, so that an
 * unchanged one serializes to the same bytes and is not sent again.
 */

/** The event entity's `event_types`. */
const trustEventTypes = [
  'revoked',
  'untrusted',
  'stopped',
  'allowed',
  'fork',
  'sync_failed',
] as const;
type TrustEventType = (typeof trustEventTypes)[number];

/** Images listed in the status sensor's attributes, at most (the worst first). */
export const maxAttributeImages = 64;
/** HA refuses a state longer than 255 characters; strings in ours are cut well below. */
const maxStateText = 64;
/** Reasons in attributes and events. */
const maxReasonText = 160;

/** The parts of the agent's `/v1/status` the payloads use. */
export interface StatusInput {
  readonly version: string;
  readonly size: number;
  readonly checkpointAgeSeconds: number | null;
  readonly stale: boolean;
  readonly fork: boolean;
  readonly lastSuccess: { readonly at: number } | null;
  readonly services: Readonly<Record<string, Health>>;
  readonly hashing: { readonly workers: number } | null;
  /** overall.ts's word for it all, the "Trust status" sensor's state. */
  readonly overall: { readonly status: Overall };
}

/** A local image's verdict, as `/v1/verdicts` lists it. */
export interface ImageInput {
  readonly id: string | null;
  readonly names: readonly string[];
  readonly status: StatusName | null;
  readonly reason: string;
}

export interface AgentView {
  readonly status: StatusInput;
  readonly images: readonly ImageInput[];
  /** The board, from hw/ (null: not known). */
  readonly board: string | null;
}

interface MqttNames {
  readonly discoveryPrefix: string;
  readonly baseTopic: string;
  readonly nodeId: string;
}

/** Every topic, from the prefixes and the node id. */
export function mqttTopics({ discoveryPrefix, baseTopic, nodeId }: MqttNames) {
  const base = `${baseTopic}/${nodeId}`;
  return {
    discovery: `${discoveryPrefix}/device/${nodeId}/config`,
    /** HA's birth message: `online` after it (re)starts. */
    haStatus: `${discoveryPrefix}/status`,
    availability: `${base}/availability`,
    /** The agent's status JSON (plain, for any consumer). */
    state: `${base}/state`,
    verdicts: `${base}/verdicts`,
    verdict: (imageId: string) => `${base}/verdicts/${imageId}`,
    /** The agent's events as the API streams them (plain, not retained). */
    events: `${base}/events`,
    /** What HA's entities read: a small JSON state, its attributes, the event entity's. */
    haState: `${base}/ha/state`,
    haAttributes: `${base}/ha/attributes`,
    haEvent: `${base}/ha/event`,
    syncCommand: `${base}/command/sync`,
    verifyCommand: `${base}/command/verify`,
  };
}
export type MqttTopics = ReturnType<typeof mqttTopics>;

/** What a button sends: HA's default `payload_press`. */
export const pressPayload = 'PRESS';

/** Worst first: an image that could not be checked right after the violations. */
const worst = (status: StatusName | null) =>
  status === null ? severity.indexOf('UNTRUSTED') + 0.5 : severity.indexOf(status);

/** The "Trust status" sensor's state: the agent's overall status (overall.ts), one rule. */
export function trustStatus({ status }: AgentView): Overall {
  return status.overall.status;
}

const cut = (text: string, length: number) =>
  text.length <= length ? text : `${text.slice(0, length - 1)}…`;

const time = (ms: number | undefined) => (ms === undefined ? null : formatUtcTime(ms));

/** The small JSON every HA sensor reads one field of (`value_template`); under 255 characters. */
export function haState(view: AgentView): string {
  const status = trustStatus(view);
  const { status: agent } = view;
  return JSON.stringify({
    status,
    problem: status === 'ok' ? 'OFF' : 'ON',
    untrusted: view.images.filter((image) => isViolation(image.status)).length,
    last_sync: time(agent.lastSuccess?.at),
    log_size: agent.size,
    checkpoint_age: agent.checkpointAgeSeconds,
    workers: agent.hashing?.workers ?? null,
    board: view.board === null ? null : cut(view.board, maxStateText),
  });
}

/** The status sensor's attributes: per-image verdicts (the worst first, bounded), freshness, fork. */
export function haAttributes(view: AgentView): string {
  const sorted = [...view.images].sort((a, b) => worst(a.status) - worst(b.status));
  return JSON.stringify({
    images: sorted.slice(0, maxAttributeImages).map((image) => ({
      id: image.id,
      name: image.names[0] ?? null,
      status: image.status ?? 'COULD_NOT_CHECK',
      reason: cut(image.reason, maxReasonText),
    })),
    images_total: view.images.length,
    last_sync: time(view.status.lastSuccess?.at),
    stale: view.status.stale,
    stale_age_seconds: view.status.checkpointAgeSeconds,
    fork: view.status.fork,
  });
}

/** The topic segment of an image's verdict: its hex ID (`sha256:` has a colon). */
function imageTopicId(id: string): string {
  return id.replace(/^sha256:/, '');
}

/** Each image's retained verdict, by topic id. */
export function verdictPayloads(images: readonly ImageInput[]): Map<string, string> {
  const payloads = new Map<string, string>();
  for (const image of images) {
    if (image.id === null) continue;
    payloads.set(
      imageTopicId(image.id),
      JSON.stringify({
        id: image.id,
        names: image.names,
        status: image.status,
        reason: image.reason,
      }),
    );
  }
  return payloads;
}

/**
 * The event entity's payload for an agent event, or undefined when it is none of
 * `trustEventTypes` (https://www.home-assistant.io/integrations/event.mqtt/: a JSON object
 * with `event_type`; its other keys become the event's attributes).
 */
export function haEvent(event: Stamped): string | undefined {
  const type = eventType(event);
  if (type === undefined) return undefined;
  const detail = (() => {
    switch (event.type) {
      case 'verdict':
        return { subject: event.subject, name: event.name, reason: event.reason };
      case 'action':
        return {
          subject: event.action.image,
          name: event.action.names[0] ?? null,
          reason: event.action.reason,
        };
      case 'health':
        return { subject: null, name: null, reason: event.health.reason };
      case 'sync':
        return { subject: event.source, name: null, reason: event.error?.message ?? '' };
    }
  })();
  return JSON.stringify({
    event_type: type,
    subject: detail.subject,
    name: detail.name,
    reason: cut(detail.reason, maxReasonText),
    at: event.at,
  });
}

function eventType(event: Stamped): TrustEventType | undefined {
  switch (event.type) {
    case 'verdict':
      if (event.status === 'REVOKED') return 'revoked';
      if (event.status === 'UNTRUSTED') return 'untrusted';
      return undefined;
    case 'action':
      if (event.action.action === 'stopped') return 'stopped';
      if (event.action.action === 'allowed') return 'allowed';
      return undefined;
    case 'health':
      // trust.ts says a fork in its degraded reason.
      return event.service === 'trust' && /^fork detected/.test(event.health.reason)
        ? 'fork'
        : undefined;
    case 'sync':
      return event.ok ? undefined : 'sync_failed';
  }
}

type Component = Record<string, unknown> & { readonly p: string };

/** The components, by id (the id is part of each unique_id: never change one). */
function components(topics: MqttTopics, nodeId: string): Record<string, Component> {
  const entity = (platform: string, id: string, name: string, extra: Record<string, unknown>) => ({
    p: platform,
    name,
    unique_id: `vouch_${nodeId}_${id}`,
    // Not object_id: deprecated in HA 2025.10, refused from 2026.4. HA adds a suffix when taken.
    default_entity_id: `${platform}.vouch_${id}`,
    availability_topic: topics.availability,
    ...extra,
  });
  const sensor = (id: string, name: string, field: string, extra: Record<string, unknown> = {}) =>
    entity('sensor', id, name, {
      state_topic: topics.haState,
      value_template: `{{ value_json.${field} }}`,
      ...extra,
    });
  const diagnostic = { entity_category: 'diagnostic' };
  return {
    status: sensor('status', 'Trust status', 'status', {
      device_class: 'enum',
      options: overallStates,
      json_attributes_topic: topics.haAttributes,
    }),
    problem: entity('binary_sensor', 'problem', 'Trust problem', {
      state_topic: topics.haState,
      value_template: '{{ value_json.problem }}',
      device_class: 'problem',
    }),
    untrusted: sensor('untrusted', 'Untrusted images', 'untrusted', {
      state_class: 'measurement',
    }),
    last_sync: sensor('last_sync', 'Last successful sync', 'last_sync', {
      device_class: 'timestamp',
    }),
    log_size: sensor('log_size', 'Log size', 'log_size', {
      ...diagnostic,
      state_class: 'measurement',
      unit_of_measurement: 'entries',
    }),
    checkpoint_age: sensor('checkpoint_age', 'Checkpoint age', 'checkpoint_age', {
      ...diagnostic,
      device_class: 'duration',
      unit_of_measurement: 's',
    }),
    workers: sensor('workers', 'Hashing workers', 'workers', diagnostic),
    board: sensor('board', 'Board', 'board', diagnostic),
    sync: entity('button', 'sync', 'Sync now', { command_topic: topics.syncCommand }),
    verify: entity('button', 'verify', 'Verify all now', { command_topic: topics.verifyCommand }),
    events: entity('event', 'events', 'Trust events', {
      state_topic: topics.haEvent,
      event_types: trustEventTypes,
    }),
  };
}

interface DiscoveryInput extends MqttNames {
  readonly version: string;
  readonly board: string | null;
  /**
   * The discovery payload the broker held before (retained), if any: its components that
   * are gone now are removed.
   */
  readonly previous?: string;
}

/**
 * The device discovery payload. `dev` and `o` hold only keys HA's schema knows: it
 * validates them strictly and drops the whole message for one unknown key. A component
 * that went away is sent as `{"p": platform}` alone, which HA takes as its removal.
 */
export function discoveryPayload(input: DiscoveryInput): string {
  const current = components(mqttTopics(input), input.nodeId);
  const cmps: Record<string, Component> = {};
  for (const [id, platform] of previousPlatforms(input.previous)) {
    if (!(id in current)) cmps[id] = { p: platform };
  }
  Object.assign(cmps, current);
  return JSON.stringify({
    dev: {
      identifiers: [`vouch_${input.nodeId}`],
      name: 'vouch',
      manufacturer: 'vouch',
      model: input.board === null ? 'vouch agent' : cut(input.board, maxStateText),
      sw_version: input.version,
    },
    o: { name: 'vouch', sw_version: input.version },
    cmps,
    qos: 1,
  });
}

/**
 * An earlier discovery payload longer than this is not ours (ours is about 6 KB) and is read
 * as none: anyone who may publish on the broker could otherwise send megabytes, parsed on
 * each message and echoed back as a retained payload of as many removals (found by
 * test/fuzz/mqtt.test.ts).
 */
export const maxPreviousDiscoveryBytes = 64 * 1024;

/** The components of an earlier payload still in it (not removed already), by id. */
function previousPlatforms(previous: string | undefined): [string, string][] {
  if (previous === undefined || previous.length > maxPreviousDiscoveryBytes) return [];
  try {
    const { cmps } = JSON.parse(previous) as { cmps?: unknown };
    if (typeof cmps !== 'object' || cmps === null) return [];
    return Object.entries(cmps).flatMap(([id, component]) => {
      const { p, ...rest } = (component ?? {}) as { p?: unknown };
      return typeof p === 'string' && Object.keys(rest).length > 0 ? [[id, p]] : [];
    });
  } catch {
    return [];
  }
}
