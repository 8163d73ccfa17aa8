# The import id is the detector id (ListDetectors shows it).
terraform import orgsec_guardduty_detector.example 12abc34d567e8fa901bc2d34e56789f0
