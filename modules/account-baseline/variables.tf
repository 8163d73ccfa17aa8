variable "standards" {
  description = "Security Hub standards to enable, by short id (such as `aws-foundational-security-best-practices/v/1.0.0`), each with the controls to disable and why."
  type = map(object({
    disabled_controls = optional(map(string), {})
  }))
  default = {
    "aws-foundational-security-best-practices/v/1.0.0" = {}
  }
}

variable "control_finding_generator" {
  description = "`SECURITY_CONTROL` (one consolidated finding per control and resource) or `STANDARD_CONTROL`."
  type        = string
  default     = "SECURITY_CONTROL"
}

variable "guardduty_features" {
  description = "GuardDuty protection plans by name (such as `S3_DATA_EVENTS`), each `ENABLED` or `DISABLED`; the ones not named are left as they are."
  type        = map(string)
  default     = {}
}

variable "guardduty_finding_publishing_frequency" {
  description = "How often GuardDuty exports updated findings: `FIFTEEN_MINUTES`, `ONE_HOUR` or `SIX_HOURS`."
  type        = string
  default     = "SIX_HOURS"
}

variable "config_recorder" {
  description = "The AWS Config recorder: the role Config assumes and the bucket it delivers to; `null` leaves Config (and `config_rules`) out."
  type = object({
    role_arn                      = string
    delivery_bucket               = string
    include_global_resource_types = optional(bool, false)
  })
  default = null
}

variable "config_rules" {
  description = "AWS Config managed rules by name, on top of the ones Security Hub's standards create; needs `config_recorder`."
  type = map(object({
    source_identifier = string
    input_parameters  = optional(string)
    resource_types    = optional(list(string), [])
    description       = optional(string)
  }))
  default = {}
}

variable "analyzers" {
  description = "IAM Access Analyzer analyzers by name, with their type (`ACCOUNT`, `ACCOUNT_UNUSED_ACCESS`, ...) and, for unused access, the age in days."
  type = map(object({
    type              = optional(string, "ACCOUNT")
    unused_access_age = optional(number)
  }))
  default = {
    "external-access" = {}
  }
}

variable "extra_bindings" {
  description = "Remediation bindings for this account (the provider's `orchestrator` block must be set), by name: playbook, controls or finding types, mode."
  type = map(object({
    playbook      = string
    controls      = optional(list(string), [])
    finding_types = optional(list(string), [])
    mode          = optional(string, "approve")
    notify        = optional(list(string), [])
    parameters    = optional(map(string), {})
  }))
  default = {}
}

variable "account_id" {
  description = "The account the baseline is applied to; the extra bindings are scoped to it."
  type        = string
}

variable "tags" {
  description = "Tags for the resources that take them (the analyzers)."
  type        = map(string)
  default     = {}
}
