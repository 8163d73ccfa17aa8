# The import id is the recorder's name: AWS Config allows one recorder per region, usually "default".
terraform import orgsec_config_recorder.this default
