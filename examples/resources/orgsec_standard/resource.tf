# Security Hub must be on before any standard can be enabled.
resource "orgsec_securityhub_account" "this" {}

# AWS Foundational Security Best Practices, with two controls turned off. Each reason is kept in
# Security Hub as evidence for auditors; every other control of the standard stays enabled.
resource "orgsec_standard" "fsbp" {
  standard = "aws-foundational-security-best-practices/v/1.0.0"

  disabled_controls = {
    "IAM.1" = "No customer managed policy grants full administrative privileges; enforced by an SCP."
    "EC2.7" = "EBS default encryption is set per workload account by the landing zone."
  }

  depends_on = [orgsec_securityhub_account.this]
}

# CIS AWS Foundations Benchmark v3.0.0 with every control enabled.
resource "orgsec_standard" "cis" {
  standard   = "cis-aws-foundations-benchmark/v/3.0.0"
  depends_on = [orgsec_securityhub_account.this]
}
