package gatehouse.access_test

import data.gatehouse.access

_alice := {"username": "alice@example.com", "groups": ["dev", "system:authenticated"], "agent": null}

_bob := {"username": "bob@example.com", "groups": ["admins", "system:authenticated"], "agent": null}

_bot := {
	"username": "agent:deploy-bot", "groups": ["agents", "system:authenticated"],
	"agent": {"name": "deploy-bot", "onBehalfOf": "alice@example.com"},
}

_req(user, verb, resource, subresource, namespace) := {
	"user": user,
	"resourceAttributes": {
		"verb": verb, "group": "", "version": "v1", "resource": resource,
		"subresource": subresource, "namespace": namespace, "name": "x",
	},
	"nonResourceAttributes": null,
	"request": {"impersonate": null},
}

test_allow_dev_writes_in_dev if {
	access.allow == {"group dev may read and write in namespace dev"} with input as _req(_alice, "delete", "configmaps", "", "dev")
}

test_allow_dev_reads_in_prod if {
	access.allow == {"group dev may read in namespace prod"} with input as _req(_alice, "list", "secrets", "", "prod")
}

test_deny_dev_writes_in_prod if {
	count(access.allow) == 0 with input as _req(_alice, "patch", "configmaps", "", "prod")
	count(access.approve) == 0 with input as _req(_alice, "delete", "configmaps", "", "prod")
}

test_deny_dev_exec_in_prod if {
	count(access.allow) == 0 with input as _req(_alice, "get", "pods", "exec", "prod")
}

test_allow_agent_reads if {
	access.allow == {"agents may read in namespaces dev and prod"} with input as _req(_bot, "watch", "deployments", "", "prod")
}

test_approve_agent_writes if {
	a := access.approve with input as _req(_bot, "create", "configmaps", "", "dev")
	a == {{"reason": "agents need a person's approval for every write", "approverGroups": ["security"], "ttlSeconds": 900, "maxGrantSeconds": 3600}}
}

test_approve_agent_exec if {
	a := access.approve with input as _req(_bot, "get", "pods", "exec", "dev")
	[x.reason | some x in a] == ["agents need a person's approval to open a session in a pod"]
}

test_approve_admin_delete_in_prod if {
	a := access.approve with input as _req(_bob, "delete", "deployments", "", "prod")
	[x.reason | some x in a] == ["deletes in namespace prod need approval from group security"]
}

test_deny_node_proxy_for_non_admins if {
	access.deny == {"nodes/proxy reaches the kubelet API directly and is for admins only"} with input as _req(_alice, "get", "nodes", "proxy", "")
	access.deny == {"nodes/proxy reaches the kubelet API directly and is for admins only"} with input as _req(_alice, "proxy", "nodes", "", "")
	count(access.deny) == 0 with input as _req(_bob, "get", "nodes", "proxy", "")
}

test_deny_ephemeral_containers_for_non_admins if {
	access.deny == {"ephemeral containers bypass the pod's spec and are for admins only"} with input as _req(_alice, "patch", "pods", "ephemeralcontainers", "dev")
}

test_deny_impersonation_for_non_admins if {
	inp := object.union(_req(_alice, "get", "pods", "", "dev"), {"request": {"impersonate": {"user": "x"}}})
	access.deny == {"impersonation through the gateway is for admins only"} with input as inp
}

test_deny_agent_without_a_person if {
	bot := json.patch(_bot, [{"op": "remove", "path": "/agent/onBehalfOf"}])
	access.deny == {"agents may not act for themselves: the token names no person the agent acts for"} with input as _req(bot, "get", "pods", "", "dev")
}

test_allow_discovery_for_everyone if {
	inp := {"user": {"groups": ["system:authenticated"]}, "resourceAttributes": null, "nonResourceAttributes": {"verb": "get", "path": "/apis/apps/v1"}}
	access.allow == {"discovery is open to every authenticated user"} with input as inp
}

test_deny_other_non_resource_paths if {
	inp := {"user": {"groups": ["dev"]}, "resourceAttributes": null, "nonResourceAttributes": {"verb": "get", "path": "/metrics"}}
	count(access.allow) == 0 with input as inp
}

test_rules_stay_safe_without_input if {
	count(access.allow) == 0 with input as {}
	count(access.deny) == 0 with input as {}
	count(access.approve) == 0 with input as {}
}

_carol := {"username": "carol@example.com", "groups": ["security", "system:authenticated"], "agent": null}

test_allow_security_reads_everywhere if {
	access.allow == {"group security may read everywhere"} with input as _req(_carol, "list", "secrets", "", "")
	count(access.allow) == 0 with input as _req(_carol, "delete", "secrets", "", "dev")
}

test_approve_admin_interactive_shell_in_prod if {
	a := access.approve with input as object.union(_req(_bob, "get", "pods", "exec", "prod"), {"request": {"impersonate": null, "exec": {"command": ["sh"], "container": "", "stdin": true, "tty": true}}})
	[x.reason | some x in a] == ["interactive shells in namespace prod need approval from group security"]
}

test_allow_admin_command_in_prod if {
	count(access.approve) == 0 with input as object.union(_req(_bob, "get", "pods", "exec", "prod"), {"request": {"impersonate": null, "exec": {"command": ["date"], "container": "", "stdin": false, "tty": false}}})
}

test_allow_dev_exec_in_dev if {
	access.allow == {"group dev may read and write in namespace dev"} with input as _req(_alice, "create", "pods", "exec", "dev")
}

_carol := {"username": "carol@example.com", "groups": ["security", "system:authenticated"], "agent": null}

_session_req(user, verb) := {
	"user": user,
	"resourceAttributes": {
		"verb": verb, "group": "gatehouse.dev", "version": "v1", "resource": "sessions",
		"subresource": "", "namespace": "", "name": "se-1",
	},
	"nonResourceAttributes": null,
	"request": {"impersonate": null},
}

test_allow_security_replays_sessions if {
	"group security may list and replay session recordings" in access.allow with input as _session_req(_carol, "get")
}

test_deny_dev_replays_sessions if {
	count(access.allow) == 0 with input as _session_req(_alice, "list")
}
