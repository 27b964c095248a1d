export type { DigestChoice } from './chunked';
export { HashPool } from './pool';
export {
  type OpenedTrust,
  openTrust,
  parseSubjectDigest,
  type Subject,
  type SubjectResult,
  type TrustSummary,
  type VerifyReport,
  verifySubjects,
} from './verify';
