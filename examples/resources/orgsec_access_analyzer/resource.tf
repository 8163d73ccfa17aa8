# An external-access analyzer for the account, and one for unused access older than 60 days.
resource "orgsec_access_analyzer" "external" {
  name = "external-access"
  tags = { owner = "secops" }
}

resource "orgsec_access_analyzer" "unused" {
  name              = "unused-access"
  type              = "ACCOUNT_UNUSED_ACCESS"
  unused_access_age = 60
}
