variable "team" {
  description = "The team's name; it prefixes the names of its bindings and rules."
  type        = string
}

variable "accounts" {
  description = "The team's accounts (its token's scope in the orchestrator); its bindings apply to them only."
  type        = list(string)
}

variable "bindings" {
  description = "The team's remediation bindings, by name (prefixed with the team): playbook, controls or finding types, mode."
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

variable "config_rules" {
  description = "AWS Config managed rules the team adds in the account the provider works in (its own workload account), by name (prefixed with the team)."
  type = map(object({
    source_identifier = string
    input_parameters  = optional(string)
    resource_types    = optional(list(string), [])
    description       = optional(string)
  }))
  default = {}
}
