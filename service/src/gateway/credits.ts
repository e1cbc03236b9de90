import type { Plan, Storage, User } from '../storage/types.js';

/** Managed-mode credits per period (a calendar month, UTC), by plan. */
export const PLAN_CREDITS: Record<Plan, number> = { free: 250, pro: 2000 };

export interface CreditPeriod {
  start: string;
  end: string;
}

export function currentPeriod(now = new Date()): CreditPeriod {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  return { start: start.toISOString(), end: end.toISOString() };
}

export async function creditsView(storage: Storage, caller: User) {
  // The plan as stored now: the caller may come from a token looked up a moment ago.
  const user = (await storage.findUserByName(caller.name)) ?? caller;
  const period = currentPeriod();
  const limit = PLAN_CREDITS[user.plan] ?? PLAN_CREDITS.free;
  const used = await storage.creditsUsed(user.id, period.start);
  return {
    plan: user.plan,
    limit,
    used,
    balance: Math.max(0, limit - used),
    period_start: period.start,
    period_end: period.end,
  };
}
