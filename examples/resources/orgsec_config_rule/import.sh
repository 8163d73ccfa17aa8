# The import id is the rule's name.
terraform import orgsec_config_rule.access_keys_rotated access-keys-rotated
