package gatehouse.workloads_test

import data.gatehouse
import data.gatehouse.workloads

_alice := {"username": "alice@example.com", "groups": ["dev", "system:authenticated"], "agent": null}

_bob := {"username": "bob@example.com", "groups": ["admins", "system:authenticated"], "agent": null}

_bot := {
	"username": "agent:deploy-bot", "groups": ["agents", "system:authenticated"],
	"agent": {"name": "deploy-bot", "onBehalfOf": "alice@example.com"},
}

_write(user, verb, group, resource, subresource) := {
	"user": user,
	"resourceAttributes": {
		"verb": verb, "group": group, "version": "v1", "resource": resource,
		"subresource": subresource, "namespace": "dev", "name": "web",
	},
	"nonResourceAttributes": null,
	"request": {"query": {}, "impersonate": null},
}

# The second evaluation: the same write, with the object the dry run produced.
_inspected(inp, obj, old) := object.union(inp, {"request": {"query": inp.request.query, "impersonate": null, "object": obj, "oldObject": old}})

_deployment(pod_spec) := {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1, "template": {"spec": pod_spec}}}

_plain := {"containers": [{"name": "app", "image": "nginx"}]}

_privileged := {"containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": true}}]}

_reasons(inp) := [r | some a in data.gatehouse.access.approve with input as inp; r := a.reason]

test_inspect_asked_for_writes_of_pod_specs if {
	every w in [
		["create", "", "pods", ""],
		["patch", "", "pods", ""],
		["patch", "", "pods", "ephemeralcontainers"],
		["update", "", "replicationcontrollers", ""],
		["patch", "apps", "deployments", ""],
		["update", "apps", "statefulsets", ""],
		["create", "apps", "daemonsets", ""],
		["patch", "apps", "replicasets", ""],
		["create", "batch", "jobs", ""],
		["patch", "batch", "cronjobs", ""],
	] {
		workloads.inspect == {"object"} with input as _write(_alice, w[0], w[1], w[2], w[3])
	}
}

test_no_inspection_for_other_writes_and_reads if {
	every w in [
		["create", "", "configmaps", ""],
		["delete", "apps", "deployments", ""],
		["get", "apps", "deployments", ""],
		["patch", "apps", "deployments", "scale"],
		["update", "", "pods", "status"],
		["create", "", "pods", "eviction"],
		["patch", "extensions.example.com", "deployments", ""],
	] {
		count(workloads.inspect) == 0 with input as _write(_alice, w[0], w[1], w[2], w[3])
	}
}

test_a_server_side_dry_run_is_not_inspected if {
	inp := object.union(_write(_alice, "create", "", "pods", ""), {"request": {"query": {"dryRun": ["All"]}}})
	count(workloads.inspect) == 0 with input as inp
}

test_attack_a_dry_run_value_the_api_server_does_not_take_still_needs_inspection if {
	every v in [[""], ["all"], ["All", "All"], ["None"]] {
		inp := object.union(_write(_alice, "create", "", "pods", ""), {"request": {"query": {"dryRun": v}}})
		workloads.inspect == {"object"} with input as inp
	}
}

test_the_decision_asks_to_inspect if {
	d := gatehouse.decision with input as _write(_alice, "create", "apps", "deployments", "")
	d.effect == "allow"
	d.inspect == ["object"]
}

test_a_denied_write_is_not_inspected if {
	inp := object.union(_write(_alice, "create", "apps", "deployments", ""), {"resourceAttributes": {"namespace": "prod"}})
	d := gatehouse.decision with input as inp
	d.effect == "deny"
	not d.inspect
}

test_privileged_container_needs_security if {
	inp := _inspected(_write(_alice, "create", "apps", "deployments", ""), _deployment(_privileged), null)
	d := gatehouse.decision with input as inp
	d.effect == "approve"
	d.reasons == [`pod specs with privileges or host access need approval from group security: container "app" sets securityContext.privileged: true`]
	d.approval == {"approverGroups": ["security"], "ttlSeconds": 900, "fields": ["$.spec.template.spec.containers[0].securityContext.privileged"]}
}

test_init_and_ephemeral_containers_count if {
	spec := {
		"containers": [{"name": "app"}],
		"initContainers": [{"name": "setup", "securityContext": {"privileged": true}}],
		"ephemeralContainers": [{"name": "debugger", "securityContext": {"privileged": true}}],
	}
	pod := {"kind": "Pod", "spec": spec}
	inp := _inspected(_write(_alice, "patch", "", "pods", "ephemeralcontainers"), pod, {"kind": "Pod", "spec": {"containers": [{"name": "app"}]}})
	{f.field | some f in workloads.risky with input as inp} == {
		"$.spec.initContainers[0].securityContext.privileged",
		"$.spec.ephemeralContainers[0].securityContext.privileged",
	}
	_reasons(inp) == [
		`pod specs with privileges or host access need approval from group security: ephemeral container "debugger" sets securityContext.privileged: true`,
		`pod specs with privileges or host access need approval from group security: init container "setup" sets securityContext.privileged: true`,
	]
}

test_host_namespaces_and_host_path if {
	spec := {
		"hostPID": true, "hostIPC": true, "hostNetwork": true,
		"containers": [{"name": "app"}],
		"volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "root", "hostPath": {"path": "/"}}],
	}
	inp := _inspected(_write(_alice, "create", "batch", "cronjobs", ""), {"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}, null)
	{f.field | some f in workloads.risky with input as inp} == {
		"$.spec.jobTemplate.spec.template.spec.hostPID",
		"$.spec.jobTemplate.spec.template.spec.hostIPC",
		"$.spec.jobTemplate.spec.template.spec.hostNetwork",
		"$.spec.jobTemplate.spec.template.spec.volumes[1].hostPath",
	}
	{f.text | some f in workloads.risky with input as inp} == {
		"the pod sets hostPID: true",
		"the pod sets hostIPC: true",
		"the pod sets hostNetwork: true",
		`volume "root" mounts the node's path / (hostPath)`,
	}
}

test_host_namespaces_set_false_pass if {
	spec := {"hostPID": false, "hostNetwork": false, "containers": [{"name": "app"}]}
	inp := _inspected(_write(_alice, "create", "", "pods", ""), {"spec": spec}, null)
	count(workloads.risky) == 0 with input as inp
	d := gatehouse.decision with input as inp
	d.effect == "allow"
}

test_attack_cap_prefix_or_lower_case_does_not_hide_a_capability if {
	caps := ["NET_BIND_SERVICE", "CHOWN", "SYS_ADMIN", "net_admin", "CAP_SYS_PTRACE", "cap_sys_module", "ALL", "CAP_KILL"]
	spec := {"containers": [{"name": "app", "securityContext": {"capabilities": {"add": caps}}}]}
	inp := _inspected(_write(_bob, "update", "apps", "daemonsets", ""), _deployment(spec), null)
	{f.field | some f in workloads.risky with input as inp} == {sprintf("$.spec.template.spec.containers[0].securityContext.capabilities.add[%d]", [i]) | some i in [2, 3, 4, 5, 6]}
	some f in workloads.risky with input as inp
	f.text == `container "app" adds capability CAP_SYS_PTRACE (securityContext.capabilities.add), beyond the Kubernetes baseline`
}

test_a_capability_that_is_not_a_string_is_not_baseline if {
	spec := {"containers": [{"name": "app", "securityContext": {"capabilities": {"add": [7]}}}]}
	inp := _inspected(_write(_alice, "create", "", "pods", ""), {"spec": spec}, null)
	count(workloads.risky) == 1 with input as inp
}

test_baseline_capabilities_pass if {
	spec := {"containers": [{"name": "app", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CAP_CHOWN"], "drop": ["ALL"]}}}]}
	inp := _inspected(_write(_alice, "create", "", "pods", ""), {"spec": spec}, null)
	d := gatehouse.decision with input as inp
	d.effect == "allow"
}

test_admins_and_agents_need_security_too if {
	admin := _inspected(_write(_bob, "create", "apps", "deployments", ""), _deployment(_privileged), null)
	da := gatehouse.decision with input as admin
	da.effect == "approve"
	da.approval.approverGroups == ["security"]
	agent := _inspected(_write(_bot, "create", "apps", "deployments", ""), _deployment(_privileged), null)
	dg := gatehouse.decision with input as agent
	dg.effect == "approve"
	count(dg.reasons) == 2
}

test_a_change_that_keeps_the_pod_spec_passes if {
	old := _deployment(_privileged)
	new := object.union(old, {"spec": {"replicas": 3}, "metadata": {"labels": {"tier": "web"}}})
	inp := _inspected(_write(_alice, "patch", "apps", "deployments", ""), new, old)
	count(workloads.risky) == 0 with input as inp
	d := gatehouse.decision with input as inp
	d.effect == "allow"
}

test_a_change_to_the_pod_spec_of_a_privileged_workload_needs_security if {
	old := _deployment(_privileged)
	new := _deployment({"containers": [{"name": "app", "image": "nginx:2", "securityContext": {"privileged": true}}]})
	inp := _inspected(_write(_alice, "patch", "apps", "deployments", ""), new, old)
	d := gatehouse.decision with input as inp
	d.effect == "approve"
}

test_an_unprivileged_change_passes if {
	inp := _inspected(_write(_alice, "patch", "apps", "deployments", ""), _deployment(_plain), _deployment({"containers": [{"name": "app", "image": "nginx:1"}]}))
	d := gatehouse.decision with input as inp
	d == {"effect": "allow", "reasons": ["group dev may read and write in namespace dev"], "mask": [], "audit": {"level": "Metadata"}, "inspect": ["object"]}
}
