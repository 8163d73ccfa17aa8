# What an application team adds on top of the organization's baseline, without touching it:
# remediation bindings scoped to the team's accounts (an app-team token can only bind there) and
# AWS Config rules in its workload account (whose recorder the baseline runs).

resource "orgsec_remediation_binding" "this" {
  for_each = var.bindings

  name          = "${var.team}-${each.key}"
  playbook      = each.value.playbook
  controls      = each.value.controls
  finding_types = each.value.finding_types
  mode          = each.value.mode
  notify        = each.value.notify
  parameters    = each.value.parameters

  scope {
    accounts = var.accounts
  }
}

resource "orgsec_config_rule" "this" {
  for_each = var.config_rules

  name              = "${var.team}-${each.key}"
  source_identifier = each.value.source_identifier
  input_parameters  = each.value.input_parameters
  resource_types    = each.value.resource_types
  description       = each.value.description
}
