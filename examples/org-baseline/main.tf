# The organization's baseline, applied from the management account: the new sandbox account
# 666666666666 gets the account baseline, then the delegated-admin (security) account enrolls it
# and binds every playbook to what it fixes. Each account is reached through
# OrganizationAccountAccessRole.
#
#   terraform apply -var endpoint_url=http://127.0.0.1:4566 \
#     -var orchestrator_endpoint=http://127.0.0.1:7443 -var orchestrator_token=...
#
# Against real AWS, leave endpoint_url unset and run with the management account's credentials.

terraform {
  required_providers {
    orgsec = { source = "orgsec/orgsec" }
  }
}

variable "endpoint_url" {
  description = "One URL for every AWS service (the emulator); null for AWS itself."
  type        = string
  default     = null
}

variable "orchestrator_endpoint" {
  description = "Where `orgsec serve` listens."
  type        = string
}

variable "orchestrator_token" {
  description = "An admin token of the orchestrator."
  type        = string
  sensitive   = true
}

variable "region" {
  type    = string
  default = "us-east-1"
}

provider "orgsec" {
  alias        = "sandbox"
  region       = var.region
  endpoint_url = var.endpoint_url
  assume_role {
    role_arn = "arn:aws:iam::666666666666:role/OrganizationAccountAccessRole"
  }
}

provider "orgsec" {
  alias        = "security"
  region       = var.region
  endpoint_url = var.endpoint_url
  assume_role {
    role_arn = "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole"
  }
  orchestrator {
    endpoint = var.orchestrator_endpoint
    token    = var.orchestrator_token
  }
}

module "sandbox_baseline" {
  source    = "../../modules/account-baseline"
  providers = { orgsec = orgsec.sandbox }

  account_id = "666666666666"
  standards = {
    "aws-foundational-security-best-practices/v/1.0.0" = {
      disabled_controls = { "IAM.6" = "Hardware MFA for root is held by the central team." }
    }
    "cis-aws-foundations-benchmark/v/3.0.0" = {}
  }
  guardduty_features = { S3_DATA_EVENTS = "ENABLED" }
}

module "security" {
  source    = "../../modules/delegated-admin"
  providers = { orgsec = orgsec.security }

  member_accounts = {
    sandbox = { account_id = "666666666666" }
  }

  # The sandbox runs Security Hub and GuardDuty before it is enrolled.
  depends_on = [module.sandbox_baseline]
}

output "sandbox" {
  value = module.sandbox_baseline
}

output "members" {
  value = module.security.member_status
}

output "bindings" {
  value = module.security.binding_names
}
