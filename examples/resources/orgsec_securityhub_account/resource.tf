# Security Hub on, without the default standards (manage them with orgsec_standard), with one
# consolidated finding per control and resource.
resource "orgsec_securityhub_account" "this" {
  enable_default_standards  = false
  control_finding_generator = "SECURITY_CONTROL"
  auto_enable_controls      = true
}
