variable "member_accounts" {
  description = "Accounts to make Security Hub and GuardDuty members of this (delegated-admin) account, by a name of your choice."
  type = map(object({
    account_id = string
    services   = optional(list(string), ["securityhub", "guardduty"])
  }))
  default = {}
}

variable "default_bindings" {
  description = "Whether to bind every playbook to what it fixes, organization-wide: automatic for the safe ones, by approval for `isolate-instance` and `deactivate-access-key`."
  type        = bool
  default     = true
}

variable "default_binding_mode" {
  description = "Mode of the default bindings of the safe playbooks: `auto`, `approve`, `notify` or `dry_run`."
  type        = string
  default     = "auto"
}

variable "notify" {
  description = "Notification targets of the orchestrator (`[notifications.NAME]` in orgsec.toml) told about every default binding's remediations."
  type        = list(string)
  default     = []
}

variable "extra_bindings" {
  description = "More remediation bindings, by name: playbook, controls or finding types, mode, scope."
  type = map(object({
    playbook             = string
    controls             = optional(list(string), [])
    finding_types        = optional(list(string), [])
    mode                 = optional(string, "approve")
    notify               = optional(list(string), [])
    parameters           = optional(map(string), {})
    accounts             = optional(list(string), [])
    organizational_units = optional(list(string), [])
  }))
  default = {}
}
