terraform {
  required_providers {
    rigbox = {
      source  = "rigbox/rigbox"
      version = "~> 0.1"
    }
  }
}

# The endpoint and token come from RIGBOX_ENDPOINT and RIGBOX_TOKEN, Vault from VAULT_ADDR and
# VAULT_TOKEN, and AWS SSM from the usual AWS chain (AWS_REGION, a profile, an instance role), so
# no credential is written in the configuration.
provider "rigbox" {}
