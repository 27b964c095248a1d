import type { SubjectResult } from '../verify/verify';

/** A subject verified through the API: a file by its path, or a digest as given. */
export interface RecentSubject {
  readonly kind: 'file' | 'digest';
  readonly result: SubjectResult;
}

/**
 * Files and digests verified through the API, most recent last, at most `limit`: the
 * subjects besides local images whose verdicts the agent re-evaluates after each commit
 * (`GET /v1/verdicts`). Only the subject and its last result are kept; a result is never
 * answered from here, every answer is computed again from the current index.
 */
export class RecentSubjects {
  readonly #subjects = new Map<string, RecentSubject>();

  constructor(private readonly limit = 1000) {}

  /** Records a result; returns the one it replaces. */
  record(kind: RecentSubject['kind'], result: SubjectResult): SubjectResult | undefined {
    const key = `${kind} ${result.subject}`;
    const previous = this.#subjects.get(key);
    // Delete first: a Map keeps insertion order, so the oldest is the first key.
    this.#subjects.delete(key);
    this.#subjects.set(key, { kind, result });
    if (this.#subjects.size > this.limit) {
      this.#subjects.delete(this.#subjects.keys().next().value as string);
    }
    return previous?.result;
  }

  get subjects(): readonly RecentSubject[] {
    return [...this.#subjects.values()];
  }
}
