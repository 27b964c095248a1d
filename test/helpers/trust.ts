import {
  addSignature,
  type Envelope,
  serializeEnvelope,
  signEnvelope,
} from '../../agent/core/dsse';
import {
  generateKey,
  KeyType,
  namePublicKey,
  type PrivateKey,
  type PublicKey,
} from '../../agent/core/keys';
import { type Root, unsignedRoot } from '../../agent/core/root';
import {
  encodeStatement,
  type StatementStatus,
  type Subject,
  statementPayloadType,
} from '../../agent/core/statement';

/** Keys, roots and statements for tests of the trust formats. */

export interface TestKey {
  readonly private: PrivateKey;
  readonly public: PublicKey;
  readonly privatePem: string;
  readonly publicPem: string;
}

export function testKey(name: string, type: KeyType = KeyType.Ed25519): TestKey {
  const { key, privatePem, publicPem } = generateKey();
  return { private: key, public: namePublicKey(name, key.raw, type), privatePem, publicPem };
}

/** A root with defaults for everything not given (expires far in the future). */
export function testRoot(fields: Partial<Root> & Pick<Root, 'rootKeys' | 'threshold'>): Root {
  return {
    version: 1,
    expires: '2099-01-01T00:00:00Z',
    log: { origin: 'log.example.org/vouch', key: testKey('log.example.org/vouch').public },
    witnesses: [],
    witnessQuorum: 0,
    signers: [],
    ...fields,
  };
}

export function signRoot(root: Root, signers: readonly TestKey[]): Envelope {
  return signers.reduce((envelope, key) => addSignature(envelope, key.private), unsignedRoot(root));
}

/** The envelope bytes of a statement signed by `key`. */
export function signedStatement(
  key: TestKey,
  fields: {
    readonly signer: string;
    readonly subjects: readonly Subject[];
    readonly status?: StatementStatus;
    readonly issuedAt?: Date;
    readonly reason?: string;
  },
): Uint8Array {
  const payload = encodeStatement({
    status: 'trusted',
    issuedAt: new Date('2025-06-01T00:00:00Z'),
    ...fields,
  });
  const envelope = signEnvelope(statementPayloadType, payload, key.private);
  return new Uint8Array(Buffer.from(serializeEnvelope(envelope)));
}
