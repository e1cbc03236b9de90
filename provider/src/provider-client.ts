import type { SsmSettings, VaultSettings } from './key-sources/index.js';
import type { RigboxClient } from './rigbox-client.js';

/** What ConfigureProvider hands every resource: the Rigbox API client and the key-source settings. */
export interface ProviderClient {
  rigbox: RigboxClient;
  keySources: { vault?: VaultSettings; ssm?: SsmSettings };
}
