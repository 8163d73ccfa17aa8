terraform {
  required_providers {
    orgsec = { source = "orgsec/orgsec" }
  }
}

# A member account's baseline, applied from the management account through the member's role.
# Credentials come from the usual AWS chain (environment, profile, SSO, instance role).
provider "orgsec" {
  region = "eu-west-1"

  assume_role {
    role_arn    = "arn:aws:iam::333333333333:role/OrganizationAccountAccessRole"
    external_id = "orgsec-baseline"
  }

  # Needed only for orgsec_remediation_binding and orgsec_posture; the token can also come from
  # ORGSEC_TOKEN.
  orchestrator {
    endpoint = "https://orgsec.security.internal:7443"
  }
}
