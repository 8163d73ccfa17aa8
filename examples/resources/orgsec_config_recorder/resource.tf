# Record every supported resource type in this region and deliver the history to an existing
# bucket. Global IAM types are recorded in the home region only.
resource "orgsec_config_recorder" "this" {
  role_arn                      = "arn:aws:iam::123456789012:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
  delivery_bucket               = "config-history-123456789012"
  include_global_resource_types = true
}
