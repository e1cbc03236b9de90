import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AuditEvent } from '../storage/types.js';

/**
 * The tamper-evident audit trail: every account's events form one hash chain. An event's `hash` is
 * an HMAC-SHA256, under a server secret, over its canonical form, which includes its place in the
 * chain (`chain_seq`) and the `hash` of the event before it (`prev_hash`). Deleting, reordering or
 * editing a stored event, or forging one without the secret, breaks the link at that event.
 */

/** The prev_hash of an account's first event. */
export const GENESIS_HASH = '0'.repeat(64);
const VERSION = 'rigbox.audit.v1';

/** An audit event with its place in its account's chain, as stored. */
export interface ChainedAuditEvent extends AuditEvent {
  /** The account whose chain holds it (the acting user). */
  readonly account: string;
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** The last link of an account's chain, as the head row pins it. */
export interface ChainHead {
  readonly account: string;
  readonly seq: number;
  readonly hash: string;
}

/**
 * The canonical bytes of an event in its chain: a JSON array of its stored values in a fixed order
 * (`changes` as its stored JSON text), so a verifier needs nothing but the row to recompute it.
 */
export function canonicalEvent(e: AuditEvent, account: string, seq: number, prevHash: string): string {
  return JSON.stringify([
    VERSION,
    account,
    seq,
    prevHash,
    e.id,
    e.ownerKind,
    e.ownerId,
    e.actorUserId,
    e.actorName,
    e.action,
    JSON.stringify(e.changes),
    e.keyEvent,
    e.revision,
    e.at,
  ]);
}

/** Computes and checks links under the server's chain secret. */
export class AuditChain {
  constructor(private readonly secret: Buffer) {
    if (secret.length < 32) throw new Error('the audit chain secret must be at least 32 bytes');
  }

  link(e: AuditEvent, account: string, seq: number, prevHash: string): string {
    return createHmac('sha256', this.secret)
      .update(canonicalEvent(e, account, seq, prevHash))
      .digest('hex');
  }

  matches(e: ChainedAuditEvent): boolean {
    const want = Buffer.from(this.link(e, e.account, e.seq, e.prevHash), 'hex');
    const got = Buffer.from(e.hash, 'hex');
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/** The first broken link found, named so that a person can find the event. */
export interface BrokenLink {
  readonly account: string;
  /** The position in the chain where the break is (the event expected there). */
  readonly seq: number;
  /** The event found there, if any. */
  readonly eventId: string | null;
  readonly reason: string;
}

export interface VerifyResult {
  readonly accounts: number;
  readonly events: number;
  readonly broken: BrokenLink | null;
}

/**
 * Walks every chain (events in (account, seq) order, as storage pages them) and returns the first
 * broken link: an event whose hash does not match its content, whose prev_hash is not the hash of
 * the event before it, a gap or a repeat in the sequence, or a chain that ends before (or after)
 * its head row says it does.
 */
export async function verifyChains(
  chain: AuditChain,
  events: AsyncIterable<ChainedAuditEvent>,
  heads: readonly ChainHead[],
): Promise<VerifyResult> {
  const headOf = new Map(heads.map((h) => [h.account, h]));
  const seen = new Set<string>();
  let account: string | null = null;
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  const endOf = (acct: string, lastSeq: number, lastHash: string): BrokenLink | null => {
    const head = headOf.get(acct);
    if (!head) {
      return { account: acct, seq: lastSeq, eventId: null, reason: 'the chain has no head row' };
    }
    if (head.seq !== lastSeq || head.hash !== lastHash) {
      return {
        account: acct,
        seq: lastSeq + 1,
        eventId: null,
        reason: `the chain ends at #${lastSeq} but its head says #${head.seq}: events after #${lastSeq} were deleted (or the head was edited)`,
      };
    }
    return null;
  };
  for await (const e of events) {
    if (e.account !== account) {
      if (account !== null) {
        const end = endOf(account, expectedSeq - 1, prevHash);
        if (end) return { accounts: seen.size, events: count, broken: end };
      }
      account = e.account;
      seen.add(account);
      expectedSeq = 1;
      prevHash = GENESIS_HASH;
    }
    count++;
    const at = (reason: string): VerifyResult => ({
      accounts: seen.size,
      events: count,
      broken: { account: e.account, seq: expectedSeq, eventId: e.id, reason },
    });
    if (e.seq !== expectedSeq) {
      return at(
        e.seq > expectedSeq
          ? `expected event #${expectedSeq}, found #${e.seq}: an event was deleted`
          : `event #${e.seq} appears again`,
      );
    }
    if (e.prevHash !== prevHash) {
      return at('prev_hash is not the hash of the event before it: events were removed, moved or replaced');
    }
    if (!chain.matches(e)) {
      return at('hash does not match the event: it was edited, moved, or written without the server secret');
    }
    prevHash = e.hash;
    expectedSeq++;
  }
  if (account !== null) {
    const end = endOf(account, expectedSeq - 1, prevHash);
    if (end) return { accounts: seen.size, events: count, broken: end };
  }
  for (const head of heads) {
    if (!seen.has(head.account) && head.seq > 0) {
      return {
        accounts: seen.size,
        events: count,
        broken: {
          account: head.account,
          seq: 1,
          eventId: null,
          reason: `the head says #${head.seq} but no event of this chain is stored: they were deleted`,
        },
      };
    }
  }
  return { accounts: seen.size, events: count, broken: null };
}
