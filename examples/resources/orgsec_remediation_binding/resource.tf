# SSH and RDP open to the world in the production accounts: revoke the world-open rules at once,
# keep every other rule, and tell the SecOps channel.
resource "orgsec_remediation_binding" "public_ingress" {
  name     = "prod-public-ingress"
  controls = ["EC2.13", "EC2.14"]
  playbook = "revoke-public-ingress"
  mode     = "auto"
  notify   = ["secops-slack"]

  scope {
    organizational_units = ["Root/Prod"]
  }
}

# A GuardDuty finding about an instance: isolate it, but only once an admin approves.
resource "orgsec_remediation_binding" "isolate" {
  name          = "isolate-compromised-instances"
  finding_types = ["CryptoCurrency:EC2/BitcoinTool.B!DNS", "Backdoor:EC2/C&CActivity.B"]
  playbook      = "isolate-instance"
  mode          = "approve"
}
