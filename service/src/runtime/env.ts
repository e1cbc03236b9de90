import { type AiProviderId, aiProvider, MANAGED_PROVIDER_IDS } from '../ai-config/providers.js';
import type { Upstream } from '../gateway/upstreams.js';
import type { AiConfigRecord } from '../storage/types.js';

/**
 * The environment of a workspace's process. Every provider SDK is pointed at the gateway, so a
 * mode switch takes effect on its next call with no restart:
 * - byok: the real key under the SDK's standard variable (the gateway recognises it by fingerprint);
 * - managed: a gateway token under the same variables, for every provider managed mode serves.
 */
export function runtimeEnv(opts: {
  workspaceId: string;
  config: AiConfigRecord;
  /** The stored key in the clear (byok), or undefined. */
  apiKey: string | undefined;
  gatewayToken: string;
  publicUrl: string;
  upstreams: Map<string, Upstream>;
}): Record<string, string> {
  const { config, upstreams } = opts;
  const env: Record<string, string> = {
    RIGBOX_WORKSPACE_ID: opts.workspaceId,
    RIGBOX_AI_MODE: config.mode,
    RIGBOX_AI_PROVIDER: config.provider,
    RIGBOX_GATEWAY_TOKEN: opts.gatewayToken,
  };
  if (config.model) env.RIGBOX_AI_MODEL = config.model;
  const pointAtGateway = (provider: string) => {
    const u = upstreams.get(provider);
    if (u) env[u.baseUrlVar] = `${opts.publicUrl}/gateway/${provider}/w/${opts.workspaceId}${u.sdkPath}`;
  };
  if (config.mode === 'byok') {
    if (opts.apiKey) env[aiProvider(config.provider as AiProviderId).envVar] = opts.apiKey;
    pointAtGateway(config.provider);
  }
  // The gateway token stands in for a key wherever managed mode could serve the call, so the
  // process keeps working if the workspace switches to managed while it runs.
  for (const id of MANAGED_PROVIDER_IDS) {
    const envVar = aiProvider(id).envVar;
    if (env[envVar] === undefined && upstreams.has(id)) {
      env[envVar] = opts.gatewayToken;
      pointAtGateway(id);
    }
  }
  return env;
}
