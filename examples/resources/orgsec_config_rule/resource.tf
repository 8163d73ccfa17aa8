resource "orgsec_config_recorder" "this" {
  role_arn        = "arn:aws:iam::123456789012:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
  delivery_bucket = "config-history-123456789012"
}

# An AWS managed rule. It needs the recorder: depends_on creates the recorder first and deletes it
# last. Parameter values are strings, as AWS Config passes them to the rule.
resource "orgsec_config_rule" "access_keys_rotated" {
  name              = "access-keys-rotated"
  source_identifier = "ACCESS_KEYS_ROTATED"
  input_parameters  = jsonencode({ maxAccessKeyAge = "90" })
  resource_types    = ["AWS::IAM::User"]
  description       = "IAM users rotate their access keys within 90 days."

  depends_on = [orgsec_config_recorder.this]
}
