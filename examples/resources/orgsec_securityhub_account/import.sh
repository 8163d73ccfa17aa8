# The import id is the account id of the provider's account.
terraform import orgsec_securityhub_account.example 123456789012
