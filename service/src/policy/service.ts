import { ApiError, PolicyViolationError } from '../errors.js';
import { newId } from '../ids.js';
import type { AuditEvent, AuditOwnerKind, PolicyGuard, Storage } from '../storage/types.js';
import {
  type ByokPolicy,
  type ByokPolicyInput,
  configViolations,
  EMPTY_POLICY,
  normalizePolicy,
  type PolicySubject,
  type Violation,
} from './rules.js';

export interface PolicyActor {
  readonly userId: string;
  readonly name: string;
}

/** The policy in force for an account, with the revision a write is checked at. */
export interface PolicyInForce {
  readonly policy: ByokPolicy;
  readonly revision: number;
  readonly updatedAt: string | null;
}

/** What a config write may go ahead with: the guard to write under, and what it breaks under `report`. */
export interface PolicyClearance {
  readonly guard: PolicyGuard;
  readonly reported: readonly Violation[];
}

const etag = (revision: number) => `"${revision}"`;

function ifMatchAllows(ifMatch: string | undefined, revision: number): boolean {
  if (ifMatch === undefined) return true;
  return ifMatch
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag(revision));
}

/**
 * Account BYOK policies: read, replace (compare-and-set on the revision, like configs), and the
 * check every config write goes through. The policy is read from storage on every check, never
 * cached, so a change made through any instance binds every instance's next write.
 */
export class ByokPolicies {
  constructor(private readonly storage: Storage) {}

  async inForce(userId: string): Promise<PolicyInForce> {
    const found = await this.storage.getByokPolicy(userId);
    if (!found) return { policy: EMPTY_POLICY, revision: 0, updatedAt: null };
    return {
      policy: { ...EMPTY_POLICY, ...found.policy } as ByokPolicy,
      revision: found.revision,
      updatedAt: found.updatedAt,
    };
  }

  /** Replaces the policy. Never touches configs: the report shows what now falls outside it. */
  async put(actor: PolicyActor, input: ByokPolicyInput, ifMatch?: string): Promise<PolicyInForce> {
    const next = normalizePolicy(input);
    for (let attempt = 0; attempt < 8; attempt++) {
      const current = await this.inForce(actor.userId);
      if (!ifMatchAllows(ifMatch, current.revision)) {
        throw new ApiError(
          412,
          'revision_mismatch',
          `If-Match does not match the current revision (${etag(current.revision)}); read the policy again and retry`,
        );
      }
      const changes: AuditEvent['changes'] = {};
      for (const key of Object.keys(next) as (keyof ByokPolicy)[]) {
        const before = current.policy[key];
        if (JSON.stringify(before) !== JSON.stringify(next[key])) changes[key] = [before, next[key]];
      }
      if (Object.keys(changes).length === 0 && current.revision > 0) return current;
      const now = new Date().toISOString();
      const revision = current.revision + 1;
      const audit = this.event(actor, 'account', actor.userId, 'byok_policy.updated', changes, revision);
      const record = { policy: { ...next }, revision, updatedAt: now };
      if (await this.storage.putByokPolicy(actor.userId, record, current.revision, audit)) {
        return { policy: next, revision, updatedAt: now };
      }
      if (ifMatch !== undefined && ifMatch.trim() !== '*') {
        throw new ApiError(
          412,
          'revision_mismatch',
          'the policy changed while this request was applied; read it again and retry',
        );
      }
    }
    throw new ApiError(409, 'write_conflict', 'the policy is being changed by many writers at once; retry');
  }

  /**
   * Checks a config about to be written. Under `enforce` a violation is refused: an audit event
   * records the refusal (the rule and the values, never a key) and the caller gets a 422 naming the
   * rule and the field. Otherwise the write goes ahead under the returned guard.
   * `inherited`: the config is the account's defaults, taken by a new workspace.
   */
  async clear(
    actor: PolicyActor,
    target: { kind: AuditOwnerKind; id: string },
    subject: PolicySubject,
    inherited = false,
  ): Promise<PolicyClearance> {
    const { policy, revision } = await this.inForce(actor.userId);
    const guard = { userId: actor.userId, revision };
    const violations = configViolations(policy, subject);
    if (violations.length === 0) return { guard, reported: [] };
    if (policy.enforcement === 'report') return { guard, reported: violations };
    await this.storage.insertAuditEvent(
      this.event(
        actor,
        target.kind,
        target.id,
        'ai_config.refused_by_policy',
        this.violationChanges(subject, violations),
        null,
      ),
    );
    const first = violations[0] as Violation;
    const more =
      violations.length > 1
        ? ` (and ${violations.length - 1} more: ${violations
            .slice(1)
            .map((v) => v.rule)
            .join(', ')})`
        : '';
    if (inherited) {
      throw new PolicyViolationError(
        first.rule,
        `the AI defaults a new workspace inherits break the BYOK policy: ${first.message}${more}; change the defaults, or create the workspace with an ai_config that the policy allows`,
        'ai_config',
      );
    }
    throw new PolicyViolationError(first.rule, `${first.message}${more}`, first.field);
  }

  private violationChanges(subject: PolicySubject, violations: readonly Violation[]): AuditEvent['changes'] {
    return {
      rules: [null, violations.map((v) => v.rule)],
      mode: [null, subject.mode],
      provider: [null, subject.provider],
      model: [null, subject.model],
    };
  }

  private event(
    actor: PolicyActor,
    ownerKind: AuditOwnerKind,
    ownerId: string,
    action: string,
    changes: AuditEvent['changes'],
    revision: number | null,
  ): AuditEvent {
    return {
      id: newId('evt'),
      ownerKind,
      ownerId,
      actorUserId: actor.userId,
      actorName: actor.name,
      action,
      changes,
      keyEvent: null,
      revision,
      at: new Date().toISOString(),
    };
  }
}
