# The AI config new workspaces of the token's user start from, with the key in AWS SSM Parameter
# Store (a SecureString): read at apply time, its version checked on every plan.
resource "rigbox_ai_defaults" "mine" {
  mode        = "byok"
  ai_provider = "anthropic"
  model       = "claude-sonnet-4-20250514"

  api_key_source {
    ssm {
      name = "/rigbox/ml/anthropic"
    }
  }
}
