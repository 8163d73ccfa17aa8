# Every account of the Prod OU (and the OUs below it), read from the management account or a
# delegated administrator.
data "orgsec_organization" "prod" {
  ou_path = "Root/Prod"
}

# Enroll each of them as a Security Hub and GuardDuty member of the delegated administrator.
resource "orgsec_hub_membership" "prod" {
  for_each = { for a in data.orgsec_organization.prod.accounts : a.id => a }

  account_id = each.key
  email      = each.value.email
}
