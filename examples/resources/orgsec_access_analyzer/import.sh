# The import id is the analyzer's name.
terraform import orgsec_access_analyzer.example external-access
