import type { Storage } from '../storage/types.js';
import { EnvelopeError, type Envelopes } from './envelope.js';

export interface RotationReport {
  rewrapped: number;
  alreadyCurrent: number;
  /** Records whose envelope did not open; they are left untouched and reported by id. */
  failed: string[];
}

/**
 * Re-wraps every stored data key under the primary KEK. Each record is swapped on its own with a
 * compare-and-set, so the service keeps serving (and writing) throughout; a record changed
 * meanwhile was written under the primary key already.
 */
export async function rewrapAll(storage: Storage, envelopes: Envelopes): Promise<RotationReport> {
  const report: RotationReport = { rewrapped: 0, alreadyCurrent: 0, failed: [] };
  for (const stored of await storage.listEnvelopes()) {
    let next: ReturnType<Envelopes['rewrap']>;
    try {
      next = envelopes.rewrap(stored.recordId, stored.envelope);
    } catch (err) {
      if (err instanceof EnvelopeError) {
        report.failed.push(stored.recordId);
        continue;
      }
      throw err;
    }
    if (!next) {
      report.alreadyCurrent++;
      continue;
    }
    if (await storage.replaceWrappedDek(stored, next)) report.rewrapped++;
    else report.alreadyCurrent++;
  }
  return report;
}
