/**
 * The rules the Home Assistant Supervisor applies to an add-on's ("app's") config.yaml, its
 * options and its translations, ported from home-assistant/supervisor at commit
 * 090ef31ec024952c2469ed5a7c9f3ce8c1a5499e (2026-08-21): supervisor/apps/validate.py
 * (_SCHEMA_APP_CONFIG, SCHEMA_ELEMENT, SCHEMA_APP_TRANSLATIONS, _warn_app_config),
 * supervisor/apps/options.py (RE_SCHEMA_ELEMENT, AppOptions), supervisor/apps/const.py
 * (RE_SLUG, MappingType), supervisor/const.py (ARCH_*, ROLE_*, AppStage,
 * INGRESS_DYNAMIC_PORT_*) and supervisor/validate.py (network_port). Each check returns the
 * problems it found, in the Supervisor's words where it has them. What it would only warn
 * about is a problem too: the add-on should load without a warning.
 */

const archAll = ['aarch64', 'amd64'];
/** Accepted with a warning: Home Assistant ended 32-bit builds (const.py ARCH_DEPRECATED). */
const archDeprecated = ['armhf', 'armv7', 'i386'];
const roles = ['default', 'homeassistant', 'backup', 'manager', 'admin'];
const stages = ['stable', 'experimental', 'deprecated'];
const mappingTypes = [
  'data',
  'config',
  'ssl',
  'local_apps',
  'backup',
  'share',
  'media',
  'homeassistant_config',
  'all_app_configs',
  'app_config',
];
/** Accepted with a warning since 2026.07 (apps/const.py: "Legacy, deprecated"). */
const legacyMappingTypes = ['addons', 'all_addon_configs', 'addon_config'];
const slugField = /^[-_.A-Za-z0-9]+$/;
const service = /^(mqtt|mysql):(provide|want|need)$/;
const ingressDynamicPorts = { min: 62000, max: 65500 };
const schemaElement =
  /^(?:|bool|email|url|port|device(?:\((?<filter>subsystem=[a-z]+)\))?|str(?:\((?<s_min>\d+)?,(?<s_max>\d+)?\))?|password(?:\((?<p_min>\d+)?,(?<p_max>\d+)?\))?|int(?:\((?<i_min>-?\d+)?,(?<i_max>-?\d+)?\))?|float(?:\((?<f_min>-?\d*\.?\d+)?,(?<f_max>-?\d*\.?\d+)?\))?|match\((?<match>.*)\)|list\((?<list>.+)\))\??$/;

type Check = (value: unknown) => string | undefined;

const isBool: Check = (value) => (typeof value === 'boolean' ? undefined : 'expected a boolean');
const isText: Check = (value) => (typeof value === 'string' ? undefined : 'expected a string');
const oneOf =
  (allowed: readonly string[]): Check =>
  (value) =>
    allowed.includes(value as string) ? undefined : `expected one of ${allowed.join(', ')}`;
const isNetworkPort: Check = (value) =>
  Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535
    ? undefined
    : 'expected a port, 1-65535';
const listOf =
  (item: Check): Check =>
  (value) =>
    Array.isArray(value)
      ? value.map(item).find((problem) => problem !== undefined)
      : 'expected a list';

/**
 * The keys of _SCHEMA_APP_CONFIG with the checks of those an add-on like this one uses.
 * The schema is `extra=vol.REMOVE_EXTRA`: the Supervisor drops any other key without a word,
 * so a misspelt key would silently do nothing; here it is a problem.
 */
const appConfigKeys: Readonly<Record<string, Check | null>> = {
  name: isText,
  version: isText,
  slug: (value) => (slugField.test(String(value)) ? undefined : `expected ${slugField}`),
  description: isText,
  arch: listOf((value) =>
    archAll.includes(value as string)
      ? undefined
      : archDeprecated.includes(value as string)
        ? `deprecated 'arch' value: ${value}`
        : `expected one of ${archAll.join(', ')}`,
  ),
  machine: null,
  url: isText,
  startup: null,
  boot: null,
  init: isBool,
  advanced: () => "the deprecated 'advanced' config field, which is ignored",
  stage: oneOf(stages),
  ports: null,
  ports_description: null,
  watchdog: null,
  webui: null,
  ingress: isBool,
  ingress_port: (value) => (value === 0 ? undefined : isNetworkPort(value)),
  ingress_entry: isText,
  ingress_stream: isBool,
  panel_icon: isText,
  panel_title: isText,
  panel_admin: isBool,
  homeassistant: isText,
  host_network: isBool,
  host_pid: isBool,
  host_ipc: isBool,
  host_uts: isBool,
  host_dbus: isBool,
  devices: null,
  udev: isBool,
  tmpfs: isBool,
  map: listOf(mapEntry),
  environment: null,
  privileged: null,
  apparmor: null,
  full_access: isBool,
  audio: isBool,
  video: isBool,
  gpio: isBool,
  usb: isBool,
  uart: isBool,
  devicetree: isBool,
  kernel_modules: isBool,
  realtime: isBool,
  hassio_api: isBool,
  hassio_role: oneOf(roles),
  homeassistant_api: isBool,
  stdin: isBool,
  legacy: isBool,
  docker_api: isBool,
  auth_api: isBool,
  services: listOf((value) => (service.test(String(value)) ? undefined : `expected ${service}`)),
  discovery: listOf(isText),
  backup_exclude: listOf(isText),
  backup_pre: isText,
  backup_post: isText,
  backup: oneOf(['hot', 'cold']),
  options: (value) => (isMapping(value) ? undefined : 'expected a mapping'),
  schema: (value) =>
    value === false || (isMapping(value) && Object.values(value).every(isSchemaElement))
      ? undefined
      : 'expected a mapping of option types (options.py RE_SCHEMA_ELEMENT)',
  image: null,
  ulimits: null,
  timeout: (value) =>
    Number.isInteger(value) && (value as number) >= 10 && (value as number) <= 300
      ? undefined
      : 'expected 10-300 seconds',
  journald: isBool,
  breaking_versions: listOf(isText),
};

/** A dict entry of `map` (the string form is migrated to it by _migrate_app_config). */
function mapEntry(value: unknown): string | undefined {
  if (!isMapping(value)) return 'expected {type, read_only?, path?}';
  const { type, read_only: readOnly, path, ...rest } = value;
  if (Object.keys(rest).length > 0) return `unknown keys ${Object.keys(rest).join(', ')}`;
  if (legacyMappingTypes.includes(type as string)) return `legacy map type '${type}'`;
  if (!mappingTypes.includes(type as string))
    return `map type ${String(type)} is not a MappingType`;
  if (readOnly !== undefined && typeof readOnly !== 'boolean') return 'read_only: expected bool';
  if (path !== undefined && typeof path !== 'string') return 'path: expected a string';
  return undefined;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** SCHEMA_ELEMENT: a type, a list of one type or mapping (not of a list), or a mapping. */
function isSchemaElement(value: unknown): boolean {
  if (typeof value === 'string') return schemaElement.test(value);
  if (Array.isArray(value)) {
    const [item] = value;
    return value.length === 1 && !Array.isArray(item) && isSchemaElement(item);
  }
  return isMapping(value) && Object.values(value).every(isSchemaElement);
}

/** config.yaml against _SCHEMA_APP_CONFIG and what _warn_app_config warns about. */
export function appConfigProblems(config: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const key of ['name', 'version', 'slug', 'description', 'arch']) {
    if (!(key in config)) problems.push(`${key}: required`);
  }
  for (const [key, value] of Object.entries(config)) {
    const check = appConfigKeys[key];
    if (check === undefined) {
      problems.push(`${key}: not a key of the app config (the Supervisor drops it)`);
      continue;
    }
    if (check === null) {
      problems.push(`${key}: not checked here; port its rule from validate.py first`);
      continue;
    }
    const problem = check(value);
    if (problem) problems.push(`${key}: ${problem}`);
  }
  // _warn_app_config: a dynamic ingress port must not collide with a mapped host port.
  if (config.ingress === true && config.ingress_port === 0 && isMapping(config.ports)) {
    for (const port of Object.keys(config.ports)) {
      const number = Number(port.split('/')[0]);
      if (number >= ingressDynamicPorts.min && number <= ingressDynamicPorts.max) {
        problems.push(`ports: ${port} is in the dynamic ingress range`);
      }
    }
  }
  return problems;
}

/**
 * AppOptions: `options` validated against `schema` as the Supervisor does before it starts
 * the add-on (and writes them to /data/options.json). An option the schema lacks is dropped
 * with a warning; a schema entry with no value and no `?` is a missing option.
 */
export function optionsProblems(
  schema: Record<string, unknown>,
  options: Record<string, unknown>,
  where = 'root',
): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (!(key in schema)) {
      problems.push(`Option '${key}' does not exist in the schema`);
      continue;
    }
    problems.push(...elementProblems(schema[key], value, key));
  }
  for (const [key, type] of Object.entries(schema)) {
    if (key in options) continue;
    const inner = Array.isArray(type) ? type[0] : type;
    if (!(typeof inner === 'string' && inner.endsWith('?'))) {
      problems.push(`Missing option '${key}' in ${where}`);
    }
  }
  return problems;
}

function elementProblems(type: unknown, value: unknown, key: string): string[] {
  if (Array.isArray(type)) {
    if (!Array.isArray(value)) return [`Invalid list for option '${key}'`];
    return value.flatMap((item) => elementProblems(type[0], item, key));
  }
  if (isMapping(type)) {
    if (!isMapping(value)) return [`Invalid dict for option '${key}'`];
    return optionsProblems(type, value, key);
  }
  const problem = singleProblem(String(type), value);
  return problem ? [`option '${key}': ${problem}`] : [];
}

/** _single_validate, for the types an add-on like this one uses. */
function singleProblem(type: string, value: unknown): string | undefined {
  if (value === null || value === undefined) return 'Missing required option';
  const match = schemaElement.exec(type);
  if (!match) return `Unknown type '${type}'`;
  const groups = match.groups ?? {};
  const range = (min?: string, max?: string) => (n: number) =>
    (min === undefined || n >= Number(min)) && (max === undefined || n <= Number(max));
  if (type.startsWith('str') || type.startsWith('password')) {
    if (typeof value !== 'string') return 'expected str';
    const inRange = range(groups.s_min ?? groups.p_min, groups.s_max ?? groups.p_max);
    return inRange(value.length) ? undefined : 'length out of range';
  }
  if (type.startsWith('int')) {
    const number = Number(value);
    if (!Number.isInteger(number)) return 'expected int';
    return range(groups.i_min, groups.i_max)(number) ? undefined : 'value out of range';
  }
  if (type.startsWith('bool')) return isBool(value);
  if (type.startsWith('url')) {
    // vol.Url: urlparse must find a scheme and a network location.
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+/i.test(String(value)) ? undefined : 'expected a URL';
  }
  if (type.startsWith('port')) return isNetworkPort(Number(value));
  // vol.Match: re.match, anchored at the start only.
  if (type.startsWith('match')) {
    return new RegExp(`^(?:${groups.match})`).test(String(value)) ? undefined : 'does not match';
  }
  if (type.startsWith('list')) return oneOf((groups.list ?? '').split('|'))(String(value));
  return `type '${type}' is not ported here`;
}

/** The depth of nested lists and mappings: the docs allow two. */
export function schemaDepth(element: unknown): number {
  if (Array.isArray(element)) return 1 + Math.max(0, ...element.map(schemaDepth));
  if (isMapping(element)) return 1 + Math.max(0, ...Object.values(element).map(schemaDepth));
  return 0;
}

/** SCHEMA_APP_TRANSLATIONS `configuration`: a name, a description, nested `fields`. */
export function translationProblems(
  schema: Record<string, unknown>,
  configuration: Record<string, unknown>,
  where = 'configuration',
): string[] {
  const problems: string[] = [];
  const keys = new Set([...Object.keys(schema), ...Object.keys(configuration)]);
  for (const key of keys) {
    const entry = configuration[key];
    if (!(key in schema)) problems.push(`${where}.${key}: no such option`);
    else if (!isMapping(entry) || typeof entry.name !== 'string')
      problems.push(`${where}.${key}: no name`);
    else {
      if (typeof entry.description !== 'string') problems.push(`${where}.${key}: no description`);
      const type = schema[key];
      const fields = isMapping(type) ? type : Array.isArray(type) ? type[0] : undefined;
      if (isMapping(fields)) {
        const named = isMapping(entry.fields) ? entry.fields : {};
        problems.push(...translationProblems(fields, named, `${where}.${key}.fields`));
      }
    }
  }
  return problems;
}
