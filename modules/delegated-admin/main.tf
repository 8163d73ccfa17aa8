# The delegated-admin (security) account: every member enrolled in Security Hub and GuardDuty, and
# the organization's remediation bindings. Apply it in the delegated-admin account, with the
# provider's `orchestrator` block pointing at `orgsec serve`.

locals {
  # Every playbook and what it fixes; the two that act on people's workloads and credentials wait
  # for an approval.
  playbooks = {
    "revoke-public-ingress"         = { controls = ["EC2.13", "EC2.14", "EC2.19", "EC2.53", "EC2.54"], finding_types = [], approve = false }
    "set-password-policy"           = { controls = ["IAM.7", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17"], finding_types = [], approve = false }
    "enable-s3-account-bpa"         = { controls = ["S3.1"], finding_types = [], approve = false }
    "block-public-bucket"           = { controls = ["S3.8"], finding_types = [], approve = false }
    "enable-ebs-default-encryption" = { controls = ["EC2.7"], finding_types = [], approve = false }
    "enable-guardduty"              = { controls = ["GuardDuty.1"], finding_types = [], approve = false }
    "isolate-instance"              = { controls = [], finding_types = ["CryptoCurrency:EC2/", "Backdoor:EC2/", "Trojan:EC2/"], approve = true }
    "deactivate-access-key"         = { controls = [], finding_types = ["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"], approve = true }
  }
}

resource "orgsec_hub_membership" "this" {
  for_each = var.member_accounts

  account_id = each.value.account_id
  services   = each.value.services
}

resource "orgsec_remediation_binding" "default" {
  for_each = var.default_bindings ? local.playbooks : {}

  name          = "default-${each.key}"
  playbook      = each.key
  controls      = each.value.controls
  finding_types = each.value.finding_types
  mode          = each.value.approve ? "approve" : var.default_binding_mode
  notify        = var.notify
}

resource "orgsec_remediation_binding" "extra" {
  for_each = var.extra_bindings

  name          = each.key
  playbook      = each.value.playbook
  controls      = each.value.controls
  finding_types = each.value.finding_types
  mode          = each.value.mode
  notify        = each.value.notify
  parameters    = each.value.parameters

  scope {
    accounts             = each.value.accounts
    organizational_units = each.value.organizational_units
  }
}
