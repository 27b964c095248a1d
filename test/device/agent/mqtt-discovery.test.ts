import { describe, expect, it } from 'vitest';
import type { Stamped } from '../../../agent/device/agent/events';
import {
  type AgentView,
  discoveryPayload,
  haAttributes,
  haEvent,
  haState,
  type ImageInput,
  maxAttributeImages,
  maxPreviousDiscoveryBytes,
  mqttTopics,
  trustStatus,
  verdictPayloads,
} from '../../../agent/device/agent/mqtt-discovery';

const names = { discoveryPrefix: 'homeassistant', baseTopic: 'vouch', nodeId: 'n1' };
const ok = { state: 'ok', reason: 'fine', since: '2026-01-01T00:00:00Z' } as const;
const status = {
  version: '1.2.3',
  size: 42,
  checkpointAgeSeconds: 3600,
  stale: false,
  fork: false,
  lastSuccess: { at: Date.UTC(2026, 0, 2, 3, 4, 5) },
  services: { trust: ok, sync: ok },
  hashing: { workers: 4 },
  overall: { status: 'ok' as const },
};
const image = (n: number, imageStatus: ImageInput['status']): ImageInput => ({
  id: `sha256:${String(n).padStart(64, '0')}`,
  names: [`example/app${n}:latest`],
  status: imageStatus,
  reason: `reason ${n}`,
});
const view = (over: Partial<AgentView> = {}): AgentView => ({
  status,
  images: [image(1, 'TRUSTED')],
  board: 'Raspberry Pi 4 Model B Rev 1.4',
  ...over,
});

describe('MQTT payloads', () => {
  it('names every topic from the prefixes and the node id', () => {
    const topics = mqttTopics(names);
    expect(topics.discovery).toBe('homeassistant/device/n1/config');
    expect(topics.haStatus).toBe('homeassistant/status');
    expect(topics.state).toBe('vouch/n1/state');
    expect(topics.verdict('abc')).toBe('vouch/n1/verdicts/abc');
    expect(topics.events).toBe('vouch/n1/events');
    expect(topics.syncCommand).toBe('vouch/n1/command/sync');
  });

  it('builds the device discovery payload, dev and o with only the keys HA knows', () => {
    const payload = JSON.parse(discoveryPayload({ ...names, version: '1.2.3', board: 'Pi 4' }));
    expect(Object.keys(payload)).toEqual(['dev', 'o', 'cmps', 'qos']);
    expect(payload.dev).toEqual({
      identifiers: ['vouch_n1'],
      name: 'vouch',
      manufacturer: 'vouch',
      model: 'Pi 4',
      sw_version: '1.2.3',
    });
    expect(payload.o).toEqual({ name: 'vouch', sw_version: '1.2.3' });
    expect(Object.keys(payload.cmps)).toEqual([
      'status',
      'problem',
      'untrusted',
      'last_sync',
      'log_size',
      'checkpoint_age',
      'workers',
      'board',
      'sync',
      'verify',
      'events',
    ]);
    expect(payload.cmps.status).toEqual({
      p: 'sensor',
      name: 'Trust status',
      unique_id: 'vouch_n1_status',
      default_entity_id: 'sensor.vouch_status',
      availability_topic: 'vouch/n1/availability',
      state_topic: 'vouch/n1/ha/state',
      value_template: '{{ value_json.status }}',
      device_class: 'enum',
      options: ['violation', 'error', 'stale', 'warning', 'ok'],
      json_attributes_topic: 'vouch/n1/ha/attributes',
    });
    expect(payload.cmps.problem).toMatchObject({ p: 'binary_sensor', device_class: 'problem' });
    expect(payload.cmps.untrusted).toMatchObject({ state_class: 'measurement' });
    expect(payload.cmps.last_sync).toMatchObject({ device_class: 'timestamp' });
    expect(payload.cmps.log_size).toMatchObject({ entity_category: 'diagnostic' });
    expect(payload.cmps.sync).toEqual({
      p: 'button',
      name: 'Sync now',
      unique_id: 'vouch_n1_sync',
      default_entity_id: 'button.vouch_sync',
      availability_topic: 'vouch/n1/availability',
      command_topic: 'vouch/n1/command/sync',
    });
    expect(payload.cmps.events).toEqual({
      p: 'event',
      name: 'Trust events',
      unique_id: 'vouch_n1_events',
      default_entity_id: 'event.vouch_events',
      availability_topic: 'vouch/n1/availability',
      state_topic: 'vouch/n1/ha/event',
      event_types: ['revoked', 'untrusted', 'stopped', 'allowed', 'fork', 'sync_failed'],
    });
    expect(JSON.stringify(payload)).not.toMatch(/object_id/);
  });

  it('removes a component the broker held that is gone, with its platform alone', () => {
    const previous = JSON.stringify({
      cmps: {
        old: { p: 'sensor', name: 'Old' },
        gone: { p: 'sensor' },
        status: { p: 'sensor', name: 'x' },
      },
    });
    const payload = JSON.parse(discoveryPayload({ ...names, version: '1', board: null, previous }));
    expect(Object.keys(payload.cmps).slice(0, 2)).toEqual(['old', 'status']);
    expect(payload.cmps.old).toEqual({ p: 'sensor' });
    expect(payload.cmps.gone).toBeUndefined();
    expect(payload.dev.model).toBe('vouch agent');
  });

  it('reads an earlier payload over 64 KiB as none: not ours, and not echoed back', () => {
    // Found by test/fuzz/mqtt.test.ts: 6 MB of components took 1.7 s and came back as 4.9 MB.
    const cmps = Object.fromEntries(
      Array.from({ length: 5000 }, (_, i) => [`c${i}`, { p: 'sensor', name: 'x' }]),
    );
    const previous = JSON.stringify({ cmps });
    expect(previous.length).toBeGreaterThan(maxPreviousDiscoveryBytes);
    const alone = discoveryPayload({ ...names, version: '1', board: null });
    expect(discoveryPayload({ ...names, version: '1', board: null, previous })).toBe(alone);
  });

  it("shows the agent's overall status (overall.ts, tested with the status page)", () => {
    expect(trustStatus(view())).toBe('ok');
    const revoked = { ...status, overall: { status: 'violation' } } as const;
    expect(trustStatus(view({ status: revoked }))).toBe('violation');
  });

  it('serializes the HA state in a fixed order, under 255 characters', () => {
    const state = haState(view({ board: 'B'.repeat(500) }));
    expect(state.length).toBeLessThan(255);
    expect(haState(view())).toBe(
      '{"status":"ok","problem":"OFF","untrusted":0,"last_sync":"2026-01-02T03:04:05Z",' +
        '"log_size":42,"checkpoint_age":3600,"workers":4,"board":"Raspberry Pi 4 Model B Rev 1.4"}',
    );
    const violation = { ...status, overall: { status: 'violation' as const } };
    const images = [image(1, 'UNTRUSTED'), image(2, 'REVOKED')];
    expect(JSON.parse(haState(view({ status: violation, images })))).toMatchObject({
      status: 'violation',
      problem: 'ON',
      untrusted: 2,
    });
  });

  it('lists at most 64 images in the attributes, the worst first', () => {
    const images = [
      ...Array.from({ length: 70 }, (_, n) => image(n + 10, 'TRUSTED')),
      image(2, null),
      image(3, 'UNTRUSTED'),
      image(4, 'REVOKED'),
    ];
    const attributes = JSON.parse(haAttributes(view({ images })));
    expect(attributes.images).toHaveLength(maxAttributeImages);
    expect(attributes.images.slice(0, 3).map((entry: { status: string }) => entry.status)).toEqual([
      'REVOKED',
      'UNTRUSTED',
      'COULD_NOT_CHECK',
    ]);
    expect(attributes.images[0]).toEqual({
      id: image(4, 'REVOKED').id,
      name: 'example/app4:latest',
      status: 'REVOKED',
      reason: 'reason 4',
    });
    expect(attributes).toMatchObject({
      images_total: 73,
      last_sync: '2026-01-02T03:04:05Z',
      stale: false,
      stale_age_seconds: 3600,
      fork: false,
    });
  });

  it('gives each image a verdict payload under its hex id', () => {
    const payloads = verdictPayloads([image(1, 'TRUSTED'), { ...image(2, null), id: null }]);
    expect([...payloads.keys()]).toEqual([String(1).padStart(64, '0')]);
    expect([...payloads.values()][0]).toBe(
      `{"id":"${image(1, 'TRUSTED').id}","names":["example/app1:latest"],"status":"TRUSTED","reason":"reason 1"}`,
    );
  });

  it('maps agent events to the event entity', () => {
    const at = '2026-01-02T03:04:05Z';
    const verdict = (to: ImageInput['status']): Stamped => ({
      type: 'verdict',
      subject: 'sha256:aa',
      kind: 'image',
      name: 'example/app',
      status: to,
      previous: 'TRUSTED',
      reason: 'revoked by the publisher',
      at,
    });
    expect(haEvent(verdict('REVOKED'))).toBe(
      '{"event_type":"revoked","subject":"sha256:aa","name":"example/app","reason":"revoked by the publisher","at":"2026-01-02T03:04:05Z"}',
    );
    expect(JSON.parse(haEvent(verdict('UNTRUSTED')) ?? '').event_type).toBe('untrusted');
    expect(haEvent(verdict('TRUSTED'))).toBeUndefined();
    const action = (kind: 'stopped' | 'allowed' | 'warned'): Stamped => ({
      type: 'action',
      action: {
        action: kind,
        container: { id: 'c1', name: 'app' },
        image: 'sha256:aa',
        names: ['example/app'],
        status: 'REVOKED',
        mode: 'enforce',
        reason: 'r',
      },
      at,
    });
    expect(JSON.parse(haEvent(action('stopped')) ?? '').event_type).toBe('stopped');
    expect(JSON.parse(haEvent(action('allowed')) ?? '').event_type).toBe('allowed');
    expect(haEvent(action('warned'))).toBeUndefined();
    const health = (service: string, reason: string): Stamped => ({
      type: 'health',
      service,
      health: { state: 'degraded', reason, since: at },
      at,
    });
    expect(
      JSON.parse(haEvent(health('trust', 'fork detected: x; see vouch status')) ?? '').event_type,
    ).toBe('fork');
    expect(haEvent(health('trust', 'stale'))).toBeUndefined();
    const sync = (okay: boolean): Stamped => ({
      type: 'sync',
      via: 'mirror',
      ok: okay,
      source: null,
      size: null,
      added: null,
      ...(!okay && { error: { code: 'UNAVAILABLE', message: 'no mirror answered' } }),
      at,
    });
    expect(haEvent(sync(false))).toBe(
      '{"event_type":"sync_failed","subject":null,"name":null,"reason":"no mirror answered","at":"2026-01-02T03:04:05Z"}',
    );
    expect(haEvent(sync(true))).toBeUndefined();
  });
});
