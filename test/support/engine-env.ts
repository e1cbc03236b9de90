import type { MotoEngine } from '../engines/moto.js';
import type { VaultEngine } from '../engines/vault.js';

/**
 * The environment a Terraform run (or a cdktf app) needs to reach a real `rigbox serve`, Vault and
 * moto: the provider reads each from the standard variables, as a user's pipeline sets them.
 */
export function engineEnv(opts: {
  server: { url: string };
  token: string;
  vault: VaultEngine;
  moto: MotoEngine;
}): Record<string, string> {
  const { server, token, vault, moto } = opts;
  return {
    RIGBOX_ENDPOINT: server.url,
    RIGBOX_TOKEN: token,
    VAULT_ADDR: vault.address,
    VAULT_TOKEN: vault.rootToken,
    AWS_REGION: moto.region,
    AWS_ACCESS_KEY_ID: moto.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: moto.credentials.secretAccessKey,
    AWS_ENDPOINT_URL: moto.endpoint,
  };
}
