output "binding_names" {
  description = "Names of the team's remediation bindings."
  value       = sort([for b in orgsec_remediation_binding.this : b.name])
}

output "config_rule_names" {
  description = "Names of the team's Config rules."
  value       = sort([for r in orgsec_config_rule.this : r.name])
}
