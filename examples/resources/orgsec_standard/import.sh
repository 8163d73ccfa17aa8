# The import id is the subscription ARN of a standard enabled in the provider's account and region
# (GetEnabledStandards lists them).
terraform import orgsec_standard.example arn:aws:securityhub:us-east-1:123456789012:subscription/aws-foundational-security-best-practices/v/1.0.0
