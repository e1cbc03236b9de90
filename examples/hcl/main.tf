# The same Rigbox AI configs as examples/typescript and examples/python, in plain HCL.
# Rigbox, Vault and AWS settings come from the environment (RIGBOX_ENDPOINT, RIGBOX_TOKEN,
# VAULT_ADDR, VAULT_TOKEN, the AWS chain), so no credential is written here.

terraform {
  required_providers {
    rigbox = {
      source  = "rigbox/rigbox"
      version = "~> 0.1"
    }
    null = {
      source  = "hashicorp/null"
      version = "~> 3.3"
    }
  }
}

provider "rigbox" {}

variable "ml_workspace_id" {
  type        = string
  description = "The Rigbox workspace of the ml team"
}

variable "research_workspace_id" {
  type        = string
  description = "The Rigbox workspace of the research team"
}

variable "support_workspace_id" {
  type        = string
  description = "The Rigbox workspace of the support team"
}

# What new workspaces start from.
resource "rigbox_ai_defaults" "defaults" {
  mode        = "byok"
  ai_provider = "anthropic"
  model       = "claude-sonnet-4-20250514"
  api_key_source {
    ssm {
      name = "/rigbox/platform/anthropic"
    }
  }
}

resource "rigbox_workspace_ai_config" "ml" {
  workspace_id = var.ml_workspace_id
  mode         = "byok"
  ai_provider  = "openai"
  model        = "gpt-4o"
  api_key_source {
    vault {
      mount = "secret"
      path  = "teams/ml/openai"
      field = "api_key"
    }
  }
}

resource "rigbox_workspace_ai_config" "research" {
  workspace_id = var.research_workspace_id
  mode         = "byok"
  ai_provider  = "anthropic"
  model        = "claude-sonnet-4-20250514"
  api_key_source {
    ssm {
      name = "/rigbox/research/anthropic"
    }
  }
}

resource "rigbox_workspace_ai_config" "support" {
  workspace_id = var.support_workspace_id
  mode         = "managed"
  ai_provider  = "anthropic"
  model        = "claude-sonnet-4-20250514"
}

# Replaced (and its provisioner run again) whenever the ML key's fingerprint changes.
resource "null_resource" "restart_ml_agents" {
  triggers = {
    workspace_id        = rigbox_workspace_ai_config.ml.workspace_id
    api_key_fingerprint = rigbox_workspace_ai_config.ml.api_key_fingerprint
  }
  provisioner "local-exec" {
    command = "echo \"ML workspace key changed: restarting its agents\""
  }
}

output "ml_api_key_fingerprint" {
  value = rigbox_workspace_ai_config.ml.api_key_fingerprint
}

output "ml_key_source_version" {
  value = rigbox_workspace_ai_config.ml.source_version
}
