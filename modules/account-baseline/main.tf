# One account's security baseline: Security Hub with its standards, GuardDuty, AWS Config with
# its rules, IAM Access Analyzer, and remediation bindings scoped to the account.

resource "orgsec_securityhub_account" "this" {
  enable_default_standards  = false
  control_finding_generator = var.control_finding_generator
}

resource "orgsec_standard" "this" {
  for_each = var.standards

  standard          = each.key
  disabled_controls = each.value.disabled_controls

  depends_on = [orgsec_securityhub_account.this]
}

resource "orgsec_guardduty_detector" "this" {
  enable                       = true
  adopt_existing               = true
  finding_publishing_frequency = var.guardduty_finding_publishing_frequency
  features                     = var.guardduty_features
}

resource "orgsec_config_recorder" "this" {
  count = var.config_recorder == null ? 0 : 1

  role_arn                      = var.config_recorder.role_arn
  delivery_bucket               = var.config_recorder.delivery_bucket
  include_global_resource_types = var.config_recorder.include_global_resource_types
}

resource "orgsec_config_rule" "this" {
  for_each = var.config_recorder == null ? {} : var.config_rules

  name              = each.key
  source_identifier = each.value.source_identifier
  input_parameters  = each.value.input_parameters
  resource_types    = each.value.resource_types
  description       = each.value.description

  depends_on = [orgsec_config_recorder.this]
}

resource "orgsec_access_analyzer" "this" {
  for_each = var.analyzers

  name              = each.key
  type              = each.value.type
  unused_access_age = each.value.unused_access_age
  tags              = var.tags
}

resource "orgsec_remediation_binding" "this" {
  for_each = var.extra_bindings

  name          = each.key
  playbook      = each.value.playbook
  controls      = each.value.controls
  finding_types = each.value.finding_types
  mode          = each.value.mode
  notify        = each.value.notify
  parameters    = each.value.parameters

  scope {
    accounts = [var.account_id]
  }
}
