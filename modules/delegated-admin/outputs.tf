output "member_status" {
  description = "Each member's status per service (`Enabled` once applied), by the name given in `member_accounts`."
  value       = { for k, m in orgsec_hub_membership.this : k => m.status }
}

output "binding_names" {
  description = "Names of every remediation binding this module manages."
  value       = sort(concat([for b in orgsec_remediation_binding.default : b.name], keys(orgsec_remediation_binding.extra)))
}
