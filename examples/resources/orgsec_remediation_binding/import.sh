# The import id is the binding's name (`orgsec bindings list` shows them).
terraform import orgsec_remediation_binding.example prod-public-ingress
