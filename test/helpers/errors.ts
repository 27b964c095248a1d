import { expect } from 'vitest';
import { VouchError } from '../../agent/core/errors';

/** The VouchError `fn` throws (fails the test when it throws anything else, or nothing). */
export function failure(fn: () => unknown): VouchError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VouchError);
    return error as VouchError;
  }
  throw new Error('expected a VouchError');
}

/** The VouchError `promise` rejects with, checked to carry `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<VouchError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected ${code}`);
    },
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(VouchError);
  expect((error as VouchError).code).toBe(code);
  return error as VouchError;
}

/** Runs `run` and expects a VouchError with `code` (class and code, as docs/architecture.md "Conventions" asks). */
export function expectVouchError(run: () => unknown, code: string): VouchError {
  const error = failure(run);
  expect(error.code).toBe(code);
  return error;
}
