/**
 * An error the API answers with as a 4xx. The message must be safe to show and log: it names the
 * field and the rule, never a submitted secret.
 */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);

/** A 429 that says when to come back (sent as Retry-After). */
export class RetryLaterError extends ApiError {
  constructor(
    code: string,
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, code, message);
  }
}

/** A 422 for a config write that breaks the account's BYOK policy under `enforce`: names the rule. */
export class PolicyViolationError extends ApiError {
  constructor(
    readonly rule: string,
    message: string,
    field: string,
  ) {
    super(422, 'policy_violation', message, field);
  }
}

/** A setting the service cannot start with; said in one line, naming the setting, never its value. */
export class ConfigError extends Error {}
