# A workspace's AI config is imported by the workspace id.
terraform import rigbox_workspace_ai_config.ml ws_019a2b3c4d5e000001a1b2c3d4e5
