# METADATA
# title: What a pod spec would be allowed to do to its node
# description: |
#   Pods, and every workload with a pod template, whose resulting pod spec runs
#   privileged, shares the node's namespaces, mounts a node path or adds
#   capabilities beyond the Kubernetes baseline. Writes cannot be judged by
#   their bodies (an apply or a patch carries only a change, and defaulting and
#   mutating admission change the result further), so these rules ask the
#   gateway to inspect the object the write would produce (`inspect`) and
#   judge `input.request.object`, the API server's own dry-run answer.
package gatehouse.workloads

# Where each workload keeps its pod spec, by API group and resource.
pod_spec_paths := {
	"": {
		"pods": ["spec"],
		"replicationcontrollers": ["spec", "template", "spec"],
	},
	"apps": {
		"deployments": ["spec", "template", "spec"],
		"statefulsets": ["spec", "template", "spec"],
		"daemonsets": ["spec", "template", "spec"],
		"replicasets": ["spec", "template", "spec"],
	},
	"batch": {
		"jobs": ["spec", "template", "spec"],
		"cronjobs": ["spec", "jobTemplate", "spec", "template", "spec"],
	},
}

# Capabilities the Pod Security Standards' baseline profile lets a container add.
baseline_capabilities := {
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

_container_lists := {"containers": "container", "initContainers": "init container", "ephemeralContainers": "ephemeral container"}

_host_namespaces := {"hostPID", "hostIPC", "hostNetwork"}

_spec_path := pod_spec_paths[input.resourceAttributes.group][input.resourceAttributes.resource]

# Writes that can change a pod spec: the workload itself, and a pod's ephemeral
# containers (kubectl debug). Other subresources (status, scale) cannot.
# The verb is tested first: most requests are reads, and the compiled policy
# builds the table of pod spec paths again at every evaluation that looks it up.
writes_pod_spec if {
	input.resourceAttributes.verb in {"create", "update", "patch"}
	input.resourceAttributes.subresource == ""
	_spec_path
}

writes_pod_spec if {
	input.resourceAttributes.group == ""
	input.resourceAttributes.resource == "pods"
	input.resourceAttributes.subresource == "ephemeralcontainers"
	input.resourceAttributes.verb in {"update", "patch"}
}

# Exactly one value, "All": anything else the API server either refuses or
# does not take for a dry run, and must not skip the check.
is_dry_run if input.request.query.dryRun == ["All"]

# A dry run writes nothing: it needs neither the inspection nor an approval.
inspect contains "object" if {
	writes_pod_spec
	not is_dry_run
}

_prefix := concat(".", array.concat(["$"], _spec_path))

_spec := object.get(input.request.object, _spec_path, {})

# Every finding in the resulting pod spec: the field (a path in the object,
# which the approval's preview highlights) and what it means.
findings contains {
	"field": sprintf("%s.%s[%d].securityContext.privileged", [_prefix, list, i]),
	"text": sprintf("%s \"%s\" sets securityContext.privileged: true", [label, object.get(c, "name", "")]),
} if {
	some list, label in _container_lists
	some i, c in _spec[list]
	c.securityContext.privileged == true
}

findings contains {
	"field": sprintf("%s.%s[%d].securityContext.capabilities.add[%d]", [_prefix, list, i, j]),
	"text": sprintf("%s \"%s\" adds capability %s (securityContext.capabilities.add), beyond the Kubernetes baseline", [label, object.get(c, "name", ""), cap]),
} if {
	some list, label in _container_lists
	some i, c in _spec[list]
	some j, cap in c.securityContext.capabilities.add
	not _baseline(cap)
}

findings contains {
	"field": sprintf("%s.%s", [_prefix, field]),
	"text": sprintf("the pod sets %s: true", [field]),
} if {
	some field in _host_namespaces
	_spec[field] == true
}

findings contains {
	"field": sprintf("%s.volumes[%d].hostPath", [_prefix, i]),
	"text": sprintf("volume \"%s\" mounts the node's path %s (hostPath)", [object.get(v, "name", ""), object.get(v.hostPath, "path", "")]),
} if {
	some i, v in _spec.volumes
	is_object(v.hostPath)
}

# Runtimes take "CAP_SYS_ADMIN" and any case for "SYS_ADMIN": compare the name
# they would grant. Anything that is not a string is not a baseline capability.
_baseline(cap) if trim_prefix(upper(cap), "CAP_") in baseline_capabilities

# A change that leaves the pod spec as it was (scale, labels, a restart's
# template annotation) adds no new risk; a create has no old object.
_pod_spec_changed if not is_object(input.request.oldObject)

_pod_spec_changed if {
	is_object(input.request.oldObject)
	object.get(input.request.oldObject, _spec_path, null) != _spec
}

# What needs a person's approval: findings of a write that changes the pod spec.
risky contains f if {
	writes_pod_spec
	not is_dry_run
	_pod_spec_changed
	some f in findings
}
