output "hub_arn" {
  description = "ARN of the account's Security Hub."
  value       = orgsec_securityhub_account.this.hub_arn
}

output "standard_subscriptions" {
  description = "Subscription ARN of each enabled standard, by the standard's short id."
  value       = { for k, s in orgsec_standard.this : k => s.subscription_arn }
}

output "guardduty_detector_id" {
  description = "The GuardDuty detector's id."
  value       = orgsec_guardduty_detector.this.detector_id
}

output "config_recorder_name" {
  description = "The AWS Config recorder's name, or null without one."
  value       = try(orgsec_config_recorder.this[0].id, null)
}

output "analyzer_arns" {
  description = "ARN of each analyzer, by name."
  value       = { for k, a in orgsec_access_analyzer.this : k => a.arn }
}

output "binding_names" {
  description = "Names of the remediation bindings this baseline added."
  value       = sort(keys(orgsec_remediation_binding.this))
}
