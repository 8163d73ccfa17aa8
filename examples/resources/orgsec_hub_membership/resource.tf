# In the organization's delegated administrator account: enroll an account of the organization
# in Security Hub and GuardDuty, and wait until both report it enabled.
resource "orgsec_hub_membership" "sandbox" {
  account_id = "666666666666"
}

# An account outside the organization is invited; the provider accepts the invitations through
# a role in that account (Security Hub and a GuardDuty detector must already be on there).
resource "orgsec_hub_membership" "partner" {
  account_id         = "777777777777"
  email              = "security@partner.example.com"
  invite             = true
  accept_role_arn    = "arn:aws:iam::777777777777:role/AcceptSecurityHubInvitation"
  accept_external_id = "orgsec-accept"
  services           = ["securityhub", "guardduty"]
  timeout            = "10m"
}
