import { setTimeout as sleep } from 'node:timers/promises';
import type { Storage, StoredEnvelope } from '../storage/types.js';
import { EnvelopeError, type Envelopes } from './envelope.js';

export interface RotationReport {
  rewrapped: number;
  alreadyCurrent: number;
  /** Records whose envelope did not open; they are left untouched and reported by id. */
  failed: string[];
  /**
   * Records still wrapped under an older KEK after the last pass: something kept sealing with an
   * older primary (an instance that does not have the new key yet). Empty when the rotation is done.
   */
  stale: string[];
}

export interface RotationOptions {
  /** Passes over all envelopes before giving up on records that keep coming back under an older key. */
  maxPasses?: number;
  /** Pause between passes, for writes in flight during the previous one to land. */
  pauseMs?: number;
}

/**
 * Re-wraps every stored data key under the primary KEK. Each record is swapped on its own with a
 * compare-and-set, so the service keeps serving (and writing) throughout. A record written while a
 * pass runs may have been sealed with the previous primary by an instance that had not yet read the
 * new key file; so passes repeat until one finds every envelope under the primary. When this returns
 * with no `stale` records, nothing needs the older keys any more.
 */
export async function rewrapAll(
  storage: Storage,
  envelopes: Envelopes,
  { maxPasses = 10, pauseMs = 100 }: RotationOptions = {},
): Promise<RotationReport> {
  const report: RotationReport = { rewrapped: 0, alreadyCurrent: 0, failed: [], stale: [] };
  const failed = new Set<string>();
  for (let pass = 0; pass < maxPasses; pass++) {
    if (pass > 0) await sleep(pauseMs);
    const behind: string[] = [];
    for (const stored of await storage.listEnvelopes()) {
      if (failed.has(stored.recordId)) continue;
      let next: ReturnType<Envelopes['rewrap']>;
      try {
        next = envelopes.rewrap(stored.recordId, stored.envelope);
      } catch (err) {
        if (err instanceof EnvelopeError) {
          failed.add(stored.recordId);
          continue;
        }
        throw err;
      }
      if (!next) {
        if (pass === 0) report.alreadyCurrent++;
        continue;
      }
      // Swapped only if still the envelope that was read; one changed meanwhile is looked at again.
      if (await storage.replaceWrappedDek(stored, next)) report.rewrapped++;
      behind.push(stored.recordId);
    }
    report.stale = behind;
    // A pass that had nothing left to re-wrap: every envelope is under the primary.
    if (behind.length === 0) break;
  }
  if (report.stale.length > 0) {
    // The last pass still had work (or lost races); report what is under an older key now.
    const last = new Set(report.stale);
    const behindNow = (s: StoredEnvelope) => {
      try {
        return envelopes.rewrap(s.recordId, s.envelope) !== undefined;
      } catch {
        return false;
      }
    };
    report.stale = (await storage.listEnvelopes())
      .filter((s) => last.has(s.recordId) && behindNow(s))
      .map((s) => s.recordId);
  }
  report.failed = [...failed];
  return report;
}
