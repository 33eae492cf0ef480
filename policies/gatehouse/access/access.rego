# METADATA
# title: Who may do what
# description: |
#   The access rules of the bundled policy. Each rule adds a reason to one of
#   three sets: allow, approve (allowed once a person approves) and deny. The
#   package gatehouse combines them: deny wins over approve wins over allow,
#   and a request no rule allows is denied.
package gatehouse.access

import data.gatehouse.workloads

read_verbs := {"get", "list", "watch"}

write_verbs := {"create", "update", "patch", "delete", "deletecollection"}

delete_verbs := {"delete", "deletecollection"}

# Subresources that open a stream into a running container.
session_subresources := {"exec", "attach", "portforward"}

is_admin if "admins" in input.user.groups

is_agent if input.user.agent.name

is_dev if "dev" in input.user.groups

is_person if not is_agent

# Attributes are read by their full path, not through an alias of the whole
# object: the gateway remembers decisions by what the policy reads, and an alias
# would read the object's name too (policies/README.md, "Read fields by their path").
is_session if {
	input.resourceAttributes.resource == "pods"
	input.resourceAttributes.subresource in session_subresources
}

# Reads of a stream-opening subresource are sessions, not reads.
is_read if {
	input.resourceAttributes.verb in read_verbs
	not is_session
}

# Requests about the caller itself: kubectl auth whoami / can-i.
_self_reviews := {"selfsubjectreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews"}

# Paths every client reads to find out what the server serves.
_discovery_prefixes := ["/api", "/apis", "/version", "/openapi/"]

# --- allow -------------------------------------------------------------------

allow contains "group admins may do anything" if is_admin

allow contains "discovery is open to every authenticated user" if {
	input.nonResourceAttributes.verb in {"get", "head"}
	some prefix in _discovery_prefixes
	startswith(input.nonResourceAttributes.path, prefix)
}

allow contains "anyone may ask the API server about their own identity and permissions" if {
	input.resourceAttributes.group in {"authentication.k8s.io", "authorization.k8s.io"}
	input.resourceAttributes.resource in _self_reviews
	input.resourceAttributes.verb == "create"
}

allow contains "group dev may read and write in namespace dev" if {
	is_dev
	is_person
	input.resourceAttributes.namespace == "dev"
}

allow contains "group dev may read in namespace prod" if {
	is_dev
	is_person
	input.resourceAttributes.namespace == "prod"
	is_read
}

# Auditors and approvers see everything, with Secret values masked (package masking).
allow contains "group security may read everywhere" if {
	"security" in input.user.groups
	is_person
	is_read
}

# Session recordings (exec/attach) are Gatehouse's own cluster-wide resource
# (group gatehouse.dev, no namespace): who may list and replay them.
allow contains "group security may list and replay session recordings" if {
	"security" in input.user.groups
	is_person
	input.resourceAttributes.group == "gatehouse.dev"
	input.resourceAttributes.resource == "sessions"
	input.resourceAttributes.verb in {"get", "list"}
}

allow contains "agents may read in namespaces dev and prod" if {
	is_agent
	input.resourceAttributes.namespace in {"dev", "prod"}
	is_read
}

# --- approve -----------------------------------------------------------------

# An approver may let the same kind of write through for an hour (a rollout of
# ten objects: one approval, not ten).
approve contains {
	"reason": "agents need a person's approval for every write",
	"approverGroups": ["security"],
	"ttlSeconds": 900,
	"maxGrantSeconds": 3600,
} if {
	is_agent
	input.resourceAttributes.namespace in {"dev", "prod"}
	input.resourceAttributes.verb in write_verbs
	not is_session
}

approve contains {
	"reason": "agents need a person's approval to open a session in a pod",
	"approverGroups": ["security"],
	"ttlSeconds": 900,
} if {
	is_agent
	input.resourceAttributes.namespace in {"dev", "prod"}
	is_session
}

# Applies to admins too: a prod delete always has a second pair of eyes.
approve contains {
	"reason": "deletes in namespace prod need approval from group security",
	"approverGroups": ["security"],
	"ttlSeconds": 900,
} if {
	input.resourceAttributes.namespace == "prod"
	input.resourceAttributes.verb in delete_verbs
	_may_write_prod
}

# Admins included: a shell in prod is where the damage happens.
approve contains {
	"reason": "interactive shells in namespace prod need approval from group security",
	"approverGroups": ["security"],
	"ttlSeconds": 900,
} if {
	is_person
	input.resourceAttributes.namespace == "prod"
	input.resourceAttributes.resource == "pods"
	input.resourceAttributes.subresource in {"exec", "attach"}
	input.request.exec.tty == true
}

_may_write_prod if is_admin

_may_write_prod if is_agent

# People, agents and admins alike: a privileged pod owns its node.
approve contains {
	"reason": sprintf("pod specs with privileges or host access need approval from group security: %s", [f.text]),
	"approverGroups": ["security"],
	"ttlSeconds": 900,
	"fields": [f.field],
} if {
	some f in workloads.risky
}

# --- inspect -----------------------------------------------------------------

# Judge writes of pod specs on the object they would produce (package workloads).
inspect contains what if {
	some what in workloads.inspect
}

# --- deny --------------------------------------------------------------------

deny contains "nodes/proxy reaches the kubelet API directly and is for admins only" if {
	not is_admin
	input.resourceAttributes.resource == "nodes"
	_is_node_proxy
}

_is_node_proxy if input.resourceAttributes.subresource == "proxy"

_is_node_proxy if input.resourceAttributes.verb == "proxy"

deny contains "ephemeral containers bypass the pod's spec and are for admins only" if {
	not is_admin
	input.resourceAttributes.resource == "pods"
	input.resourceAttributes.subresource == "ephemeralcontainers"
}

# null is truthy in Rego: test for a value, not for presence.
deny contains "impersonation through the gateway is for admins only" if {
	not is_admin
	is_object(input.request.impersonate)
}

deny contains "agents may not act for themselves: the token names no person the agent acts for" if {
	is_agent
	not _names_a_person
}

_names_a_person if {
	person := input.user.agent.onBehalfOf
	is_string(person)
	person != ""
}
