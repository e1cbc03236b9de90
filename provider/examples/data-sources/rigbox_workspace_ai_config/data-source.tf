# Reads a workspace's AI config, e.g. to trigger a redeploy when its key changes.
data "rigbox_workspace_ai_config" "ml" {
  workspace_id = rigbox_workspace_ai_config.ml.workspace_id
}

output "ml_api_key_fingerprint" {
  value = data.rigbox_workspace_ai_config.ml.api_key_fingerprint
}
