# GuardDuty with S3 and runtime protection. adopt_existing takes over a detector that is already
# there (a member enabled by the delegated administrator, say) instead of failing.
resource "orgsec_guardduty_detector" "this" {
  enable                       = true
  finding_publishing_frequency = "FIFTEEN_MINUTES"
  adopt_existing               = true

  features = {
    S3_DATA_EVENTS     = "ENABLED"
    RUNTIME_MONITORING = "ENABLED"
  }
}
