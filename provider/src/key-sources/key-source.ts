/** An opened key source: where an API key lives, readable at apply time. */
export interface KeySource {
  /** The printable reference (no value), for messages and plans. */
  describe(): string;
  /** Reads the key and the version it came from. Only an apply should call this. */
  readValue(): Promise<{ value: string; version: string }>;
  /**
   * The version a read would return now, from the source's metadata only: plans and drift checks
   * call this, so it never reads (or transfers) the key.
   */
  readVersion(): Promise<string>;
}
