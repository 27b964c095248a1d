export type { DigestChoice } from './chunked';
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
