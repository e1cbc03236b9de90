import type { ChainPosition, Storage } from '../storage/types.js';
import { type AuditChain, type ChainedAuditEvent, type VerifyResult, verifyChains } from './chain.js';

const PAGE = 1000;

/** Every chained audit event in storage, in (account, seq) order, a page at a time. */
async function* allEvents(storage: Storage): AsyncIterable<ChainedAuditEvent> {
  let after: ChainPosition | undefined;
  for (;;) {
    const page = await storage.auditChain({ after, limit: PAGE });
    yield* page;
    const last = page[page.length - 1];
    if (!last || page.length < PAGE) return;
    after = { account: last.account, seq: last.seq };
  }
}

/** Checks every account's audit chain in storage; the first broken link, or none. */
export async function verifyStoredChains(storage: Storage, chain: AuditChain): Promise<VerifyResult> {
  return verifyChains(chain, allEvents(storage), await storage.auditChainHeads());
}

/** One line that names a broken link so a person can find it. */
export function describeBrokenLink(result: VerifyResult): string {
  const b = result.broken;
  if (!b) return `audit chain intact: ${result.events} events in ${result.accounts} account chains`;
  const event = b.eventId ? ` (event ${b.eventId})` : '';
  return `audit chain broken at account ${b.account}, link #${b.seq}${event}: ${b.reason}`;
}
