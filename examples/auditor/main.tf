# What an auditor reads, with an auditor token (read-only): the organization's and each OU's
# score and what to fix first. The evidence bundle comes from the CLI or the API:
#
#   orgsec evidence export --framework cis-3.0 --out evidence.zip && orgsec evidence verify evidence.zip

terraform {
  required_providers {
    orgsec = { source = "orgsec/orgsec" }
  }
}

variable "endpoint_url" {
  type    = string
  default = null
}

variable "orchestrator_endpoint" {
  type = string
}

variable "orchestrator_token" {
  description = "An auditor token."
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

data "orgsec_posture" "org" {
  top = 5
}

data "orgsec_posture" "ou" {
  for_each = toset(["Root/Prod", "Root/Dev"])
  scope    = "ou"
  id       = each.key
  top      = 3
}

output "org_score" {
  value = data.orgsec_posture.org.score
}

output "fix_first" {
  value = [for p in data.orgsec_posture.org.priorities : "${p.control_id}: ${p.title} (+${p.improvement_potential})"]
}

output "ou_scores" {
  value = { for k, p in data.orgsec_posture.ou : k => p.score }
}
