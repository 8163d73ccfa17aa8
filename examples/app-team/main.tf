# What the web team adds on top of the baseline, with its own credentials and its own app-team
# token: a binding that closes world-open SSH in its account, and a Config rule there.
#
#   terraform apply -var endpoint_url=http://127.0.0.1:4566 \
#     -var orchestrator_endpoint=http://127.0.0.1:7443 -var orchestrator_token=...

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
  type = string
}

variable "orchestrator_token" {
  description = "The web team's app-team token (scoped to 333333333333)."
  type        = string
  sensitive   = true
}

provider "orgsec" {
  region       = "us-east-1"
  endpoint_url = var.endpoint_url
  orchestrator {
    endpoint = var.orchestrator_endpoint
    token    = var.orchestrator_token
  }
}

module "web" {
  source   = "../../modules/app-team-extension"
  team     = "web"
  accounts = ["333333333333"]

  bindings = {
    "close-ssh" = { playbook = "revoke-public-ingress", controls = ["EC2.13"], mode = "auto" }
  }
  config_rules = {
    "s3-versioning" = {
      source_identifier = "S3_BUCKET_VERSIONING_ENABLED"
      description       = "The web team keeps versions of its buckets' objects."
    }
  }
}

output "bindings" {
  value = module.web.binding_names
}

output "config_rules" {
  value = module.web.config_rule_names
}
