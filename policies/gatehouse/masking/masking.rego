# METADATA
# title: What is masked in responses
# description: |
#   JSONPath directives (jsonpath-plus syntax) applied to every object in a
#   response: a get, each item of a list, each watch event, each Table row.
#   Actions: redact (fixed marker; Secret data stays valid base64), hash (keyed,
#   so equal values compare equal), remove (drop the member). A directive's
#   "when" is a filter over the object itself: the path applies only where it holds.
package gatehouse.masking

import data.gatehouse.access

# Kinds whose pod template or spec carries container env values.
_workloads := {"pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"}

_secret_values_masked if {
	input.resourceAttributes.resource == "secrets"
	not access.is_admin
}

# An agent always gets Secret values masked, whatever groups it carries.
_secret_values_masked if {
	input.resourceAttributes.resource == "secrets"
	access.is_agent
}

# Helm keeps each release (chart values and rendered manifests, Secrets included)
# in a Secret of type helm.sh/release.v1 and must read it back whole to upgrade or
# roll back. Group deployers reads those whole in dev, where it may write; every
# other Secret stays masked. The cost, written down in the README ("Helm
# releases"): whatever a chart put in a release is readable to deployers there.
_reads_helm_releases if {
	"deployers" in input.user.groups
	access.is_person
	input.resourceAttributes.namespace == "dev"
}

mask contains {"path": "$.data.*", "action": "redact", "when": "@.type != 'helm.sh/release.v1'"} if {
	_secret_values_masked
	_reads_helm_releases
}

mask contains {"path": "$.data.*", "action": "redact"} if {
	_secret_values_masked
	not _reads_helm_releases
}

mask contains {"path": "$.stringData.*", "action": "redact"} if _secret_values_masked

mask contains {"path": "$..env[?(@.name =~ /PASSWORD|TOKEN|SECRET|KEY/)].value", "action": "hash"} if {
	access.is_agent
	input.resourceAttributes.resource in _workloads
}

# TokenRequest answers are credentials too.
mask contains {"path": "$.status.token", "action": "redact"} if {
	input.resourceAttributes.resource == "serviceaccounts"
	input.resourceAttributes.subresource == "token"
	not access.is_admin
}
