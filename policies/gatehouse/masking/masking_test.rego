package gatehouse.masking_test

import data.gatehouse.masking

_secret_values := {{"path": "$.data.*", "action": "redact"}, {"path": "$.stringData.*", "action": "redact"}}

_req(groups, agent, resource, subresource) := {
	"user": {"username": "u", "groups": groups, "agent": agent},
	"resourceAttributes": {"verb": "get", "resource": resource, "subresource": subresource, "namespace": "dev"},
}

test_mask_secret_values_for_dev if {
	masking.mask == _secret_values with input as _req(["dev"], null, "secrets", "")
}

test_mask_nothing_for_admins if {
	count(masking.mask) == 0 with input as _req(["admins"], null, "secrets", "")
}

test_mask_secret_values_for_agents_even_in_admins if {
	masking.mask == _secret_values with input as _req(["admins"], {"name": "bot", "onBehalfOf": "a"}, "secrets", "")
}

test_mask_env_secrets_for_agents if {
	masking.mask == {{"path": "$..env[?(@.name =~ /PASSWORD|TOKEN|SECRET|KEY/)].value", "action": "hash"}} with input as _req(["agents"], {"name": "bot", "onBehalfOf": "a"}, "deployments", "")
}

test_mask_token_requests if {
	masking.mask == {{"path": "$.status.token", "action": "redact"}} with input as _req(["dev"], null, "serviceaccounts", "token")
}

test_mask_nothing_on_configmaps if {
	count(masking.mask) == 0 with input as _req(["dev"], null, "configmaps", "")
}

_helm_releases_readable := {{"path": "$.data.*", "action": "redact", "when": "@.type != 'helm.sh/release.v1'"}, {"path": "$.stringData.*", "action": "redact"}}

_in(req, namespace) := object.union(req, {"resourceAttributes": object.union(req.resourceAttributes, {"namespace": namespace})})

test_deployers_read_helm_releases_whole_in_dev if {
	masking.mask == _helm_releases_readable with input as _req(["dev", "deployers"], null, "secrets", "")
}

test_deployers_get_helm_releases_masked_elsewhere if {
	masking.mask == _secret_values with input as _in(_req(["dev", "deployers"], null, "secrets", ""), "prod")
	masking.mask == _secret_values with input as _in(_req(["dev", "deployers"], null, "secrets", ""), "")
}

test_agents_in_deployers_get_helm_releases_masked if {
	masking.mask == _secret_values with input as _req(["deployers"], {"name": "bot", "onBehalfOf": "a"}, "secrets", "")
}
