# The Prod OU's posture score and its three most valuable fixes.
data "orgsec_posture" "prod" {
  scope = "ou"
  id    = "Root/Prod"
  top   = 3
}

output "prod_score" {
  value = data.orgsec_posture.prod.score
}

output "prod_fix_first" {
  value = [for p in data.orgsec_posture.prod.priorities : "${p.control_id} (+${p.improvement_potential})"]
}
