terraform {
  required_version = ">= 1.5"
  required_providers {
    orgsec = { source = "orgsec/orgsec" }
  }
}
