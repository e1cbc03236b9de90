# A token's user has one set of defaults: the import id is always "defaults".
terraform import rigbox_ai_defaults.mine defaults
