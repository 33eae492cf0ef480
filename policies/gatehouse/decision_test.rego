package gatehouse_test

import data.gatehouse

# The sample inputs in policies/fixtures/samples.json, each with its whole
# expected decision. mocha runs the same samples through the compiled WASM.
test_samples if {
	every sample in data.fixtures.samples {
		_decides(sample)
	}
}

_decides(sample) if {
	gatehouse.decision == sample.decision with input as sample.input
} else := false if {
	print("sample failed:", sample.name, "got", gatehouse.decision) with input as sample.input
}

test_deny_by_default if {
	gatehouse.decision == {
		"effect": "deny",
		"reasons": ["no rule allows this request"],
		"mask": [],
		"audit": {"level": "Metadata"},
	} with input as {}
}

test_deny_wins_over_allow if {
	inp := {
		"user": {"username": "a", "groups": ["dev"], "agent": null},
		"resourceAttributes": {"verb": "patch", "resource": "pods", "subresource": "ephemeralcontainers", "namespace": "dev"},
		"request": {"impersonate": null},
	}
	d := gatehouse.decision with input as inp
	d.effect == "deny"
	d.reasons == ["ephemeral containers bypass the pod's spec and are for admins only"]
}

test_deny_when_approve_rules_share_no_approver_group if {
	d := gatehouse.decision with data.gatehouse.access.approve as {
		{"reason": "a", "approverGroups": ["x"], "ttlSeconds": 60},
		{"reason": "b", "approverGroups": ["y"], "ttlSeconds": 60},
	}
	d.effect == "deny"
	d.reasons == ["a", "b", "no group may approve this request: the approve rules name no common approver group"]
}

test_approve_takes_shortest_ttl_and_common_groups if {
	d := gatehouse.decision with data.gatehouse.access.approve as {
		{"reason": "a", "approverGroups": ["security", "sre"], "ttlSeconds": 600},
		{"reason": "b", "approverGroups": ["security"], "ttlSeconds": 60},
	}
	d.approval == {"approverGroups": ["security"], "ttlSeconds": 60}
}

test_approve_grants_only_what_every_rule_allows if {
	one := gatehouse.decision with data.gatehouse.access.approve as {{"reason": "a", "approverGroups": ["security"], "ttlSeconds": 60, "maxGrantSeconds": 3600}}
	one.approval == {"approverGroups": ["security"], "ttlSeconds": 60, "maxGrantSeconds": 3600}
	two := gatehouse.decision with data.gatehouse.access.approve as {
		{"reason": "a", "approverGroups": ["security"], "ttlSeconds": 60, "maxGrantSeconds": 3600},
		{"reason": "b", "approverGroups": ["security"], "ttlSeconds": 60},
	}
	two.approval == {"approverGroups": ["security"], "ttlSeconds": 60}
}
