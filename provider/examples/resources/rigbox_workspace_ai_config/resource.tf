variable "workspace_id" {
  type        = string
  description = "The Rigbox workspace of the ML team"
}

# BYOK with the key in Vault (KV v2): the provider reads it at apply time. State keeps only the
# key's fingerprint and the secret's version, so a rotation in Vault shows in the next plan.
resource "rigbox_workspace_ai_config" "ml" {
  workspace_id = var.workspace_id
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

variable "research_workspace_id" {
  type        = string
  description = "The Rigbox workspace of the research team"
}

variable "research_openai_key" {
  type        = string
  sensitive   = true
  description = "Set by the pipeline, e.g. TF_VAR_research_openai_key"
}

# A write-only key (Terraform and OpenTofu 1.11+): sent on apply, never stored in state or plan.
# Raise api_key_wo_version to send a new key.
resource "rigbox_workspace_ai_config" "research" {
  workspace_id       = var.research_workspace_id
  mode               = "byok"
  ai_provider        = "openai"
  api_key_wo         = var.research_openai_key
  api_key_wo_version = 1
}
