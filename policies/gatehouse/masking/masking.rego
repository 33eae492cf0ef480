# METADATA
# title: What is masked in responses
# description: |
#   JSONPath directives (jsonpath-plus syntax) applied to every object in a
#   response: a get, each item of a list, each watch event, each Table row.
#   Actions: redact (fixed marker; Secret data stays valid base64), hash (keyed,
#   so equal values compare equal), remove (drop the member).
package gatehouse.masking

import data.gatehouse.access

_ra := input.resourceAttributes

# Kinds whose pod template or spec carries container env values.
_workloads := {"pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"}

_secret_values_masked if {
	_ra.resource == "secrets"
	not access.is_admin
}

# An agent always gets Secret values masked, whatever groups it carries.
_secret_values_masked if {
	_ra.resource == "secrets"
	access.is_agent
}

mask contains {"path": "$.data.*", "action": "redact"} if _secret_values_masked

mask contains {"path": "$.stringData.*", "action": "redact"} if _secret_values_masked

mask contains {"path": "$..env[?(@.name =~ /PASSWORD|TOKEN|SECRET|KEY/)].value", "action": "hash"} if {
	access.is_agent
	_ra.resource in _workloads
}

# TokenRequest answers are credentials too.
mask contains {"path": "$.status.token", "action": "redact"} if {
	_ra.resource == "serviceaccounts"
	_ra.subresource == "token"
	not access.is_admin
}
