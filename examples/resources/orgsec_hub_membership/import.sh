# The import id is the member account id; run it with the administrator account's credentials.
terraform import orgsec_hub_membership.example 666666666666
