/**
 * The peer: a TUF repository read by `tuf-js` (npm's TUF client, the one sigstore-js uses).
 * TUF signs role metadata, not targets: one targets.json lists every target's hashes and is
 * signed once by the targets key, so a client checks four signatures (root, timestamp,
 * snapshot, targets) however many targets there are. vouch checks an author's signature on
 * every statement.
 *
 * targets.json is written here as plain JSON, its canonical form signed with
 * `@tufjs/canonical-json` (what tuf-js verifies with): @tufjs/models 4 builds its target map
 * with a spread per target (`targetsFromJSON`/`targetsToJSON` in dist/targets.js), so making
 * it through the models takes time quadratic in the targets, as reading it in tuf-js does.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Metadata, MetaFile, Root, Signature, Snapshot, Timestamp } from '@tufjs/models';
import { Updater } from 'tuf-js';

const expires = '2099-01-01T00:00:00Z';
const specVersion = '1.0.31';

interface TufKey {
  readonly key: Key;
  readonly keyID: string;
  readonly privateKey: KeyObject;
  readonly sign: (data: Buffer) => Signature;
}

function ed25519Key(): TufKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const keyVal = { public: raw.toString('hex') };
  // The key ID: SHA-256 of the key's canonical JSON (TUF spec, "Key objects").
  const keyID = createHash('sha256')
    .update(canonicalize({ keytype: 'ed25519', keyval: keyVal, scheme: 'ed25519' }))
    .digest('hex');
  const key = new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal });
  return {
    key,
    keyID,
    privateKey,
    sign: (data) => new Signature({ keyID, sig: sign(null, data, privateKey).toString('hex') }),
  };
}

/** The target of statement i: a path and the digest vouch's statement i names. */
export type TargetOf = (i: number) => { readonly name: string; readonly sha256: string };

/**
 * A TUF repository in `dir`: root, timestamp, snapshot, and targets listing `count`
 * targets; each `publish(count)` writes a new version. Consistent snapshots off, as a static
 * mirror without versioned file names serves it.
 */
export async function tufRepository(dir: string, targetOf: TargetOf) {
  const roles = {
    root: ed25519Key(),
    timestamp: ed25519Key(),
    snapshot: ed25519Key(),
    targets: ed25519Key(),
  };
  const root = new Root({ version: 1, specVersion, expires, consistentSnapshot: false });
  for (const [role, { key }] of Object.entries(roles)) root.addKey(key, role);
  const rootMetadata = new Metadata(root);
  rootMetadata.sign(roles.root.sign);
  await mkdir(dir, { recursive: true });
  const rootJson = JSON.stringify(rootMetadata.toJSON());
  await writeFile(join(dir, 'root.json'), rootJson);
  await writeFile(join(dir, '1.root.json'), rootJson);
  let version = 0;

  async function write(name: string, json: unknown, metaVersion: number) {
    const bytes = Buffer.from(JSON.stringify(json));
    await writeFile(join(dir, `${name}.json`), bytes);
    return new MetaFile({
      version: metaVersion,
      length: bytes.length,
      hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
    });
  }

  return {
    rootJson,
    async publish(count: number): Promise<void> {
      version++;
      const targets: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) {
        const { name, sha256 } = targetOf(i);
        targets[name] = { length: 1, hashes: { sha256 } };
      }
      const signed = { _type: 'targets', spec_version: specVersion, version, expires, targets };
      const sig = sign(null, Buffer.from(canonicalize(signed)), roles.targets.privateKey);
      const targetsMeta = await write(
        'targets',
        { signatures: [{ keyid: roles.targets.keyID, sig: sig.toString('hex') }], signed },
        version,
      );
      const snapshot = new Metadata(
        new Snapshot({ version, specVersion, expires, meta: { 'targets.json': targetsMeta } }),
      );
      snapshot.sign(roles.snapshot.sign);
      const snapshotMeta = await write('snapshot', snapshot.toJSON(), version);
      const timestamp = new Metadata(
        new Timestamp({ version, specVersion, expires, snapshotMeta }),
      );
      timestamp.sign(roles.timestamp.sign);
      await write('timestamp', timestamp.toJSON(), version);
    },
  };
}

/**
 * A TUF client's trusted metadata directory, starting from the repository's root
 * (the counterpart of a vouch state directory made with `--root`).
 */
export async function tufClient(base: string, rootJson: string): Promise<string> {
  const metadataDir = await mkdtemp(join(base, 'tuf-client-'));
  await writeFile(join(metadataDir, 'root.json'), rootJson);
  return metadataDir;
}

/** `Updater.refresh()`: root, timestamp, snapshot and targets fetched and verified. */
export async function tufRefresh(metadataDir: string, metadataBaseUrl: string): Promise<void> {
  const updater = new Updater({
    metadataDir,
    metadataBaseUrl,
    targetDir: metadataDir,
    // The defaults cap targets.json at 5 MB and snapshot.json at 2 MB: 20k targets take more.
    config: { targetsMaxLength: 1 << 30, snapshotMaxLength: 1 << 30 },
  });
  await updater.refresh();
}
