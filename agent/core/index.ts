export { asVouchError, type ErrorCode, type ErrorKind, errorKinds, VouchError } from './errors';
export { Status, type StatusCode, type StatusName, statusNames } from './status';
