# METADATA
# title: The decision
# description: |
#   The entrypoint gatehouse/decision, compiled to WebAssembly with
#   `opa build -t wasm -e gatehouse/decision`. Combines the access rules and
#   the masking directives into the decision contract (see README, "Policy
#   contract"): deny wins over approve wins over allow; default deny.
package gatehouse

import data.gatehouse.access
import data.gatehouse.masking

_audit := {"level": "Metadata"}

_mask := sort([m | some m in masking.mask])

_approve_reasons := sort([a.reason | some a in access.approve])

# Every approve rule must be satisfied, so an approver must be in a group
# that every rule names.
_approver_groups := sort([g | some g in intersection({{x | some x in a.approverGroups} | some a in access.approve})])

_approval_ttl := min({a.ttlSeconds | some a in access.approve})

_approval_fields := sort({f | some a in access.approve; some f in object.get(a, "fields", [])})

# A grant covers later requests too: the shortest any rule allows (a rule that
# says nothing allows none).
_approval_grant := min({object.get(a, "maxGrantSeconds", 0) | some a in access.approve})

# Optional members, present only when there is something to say, so that
# decisions of policies that use neither keep their shape.
_approval_fields_member := {"fields": _approval_fields} if {
	count(_approval_fields) > 0
} else := {}

_approval_grant_member := {"maxGrantSeconds": _approval_grant} if {
	_approval_grant > 0
} else := {}

_approval := object.union_n([
	{"approverGroups": _approver_groups, "ttlSeconds": _approval_ttl},
	_approval_fields_member,
	_approval_grant_member,
])

_inspect := {"inspect": sort([i | some i in access.inspect])} if {
	count(access.inspect) > 0
} else := {}

decision := {
	"effect": "deny",
	"reasons": sort([r | some r in access.deny]),
	"mask": [],
	"audit": _audit,
} if {
	count(access.deny) > 0
} else := {
	"effect": "deny",
	"reasons": array.concat(_approve_reasons, ["no group may approve this request: the approve rules name no common approver group"]),
	"mask": [],
	"audit": _audit,
} if {
	count(access.approve) > 0
	count(_approver_groups) == 0
} else := object.union(
	{
		"effect": "approve",
		"reasons": _approve_reasons,
		"mask": _mask,
		"approval": _approval,
		"audit": _audit,
	},
	_inspect,
) if {
	count(access.approve) > 0
} else := object.union(
	{
		"effect": "allow",
		"reasons": sort([r | some r in access.allow]),
		"mask": _mask,
		"audit": _audit,
	},
	_inspect,
) if {
	count(access.allow) > 0
} else := {
	"effect": "deny",
	"reasons": ["no rule allows this request"],
	"mask": [],
	"audit": _audit,
}
