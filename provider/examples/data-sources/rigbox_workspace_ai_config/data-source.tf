# Reads a workspace's AI config, e.g. to trigger a redeploy when its key changes. depends_on makes
# the read wait for the resource's apply, so the fingerprint is the one just applied.
data "rigbox_workspace_ai_config" "ml" {
  workspace_id = var.workspace_id
  depends_on   = [rigbox_workspace_ai_config.ml]
}

output "ml_api_key_fingerprint" {
  value = data.rigbox_workspace_ai_config.ml.api_key_fingerprint
}
