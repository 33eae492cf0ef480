{{- define "gatehouse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gatehouse.labels" -}}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gatehouse.serviceAccountName" -}}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "gatehouse.secretName" -}}
{{- default (printf "%s-keys" (include "gatehouse.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "gatehouse.postgresSecretName" -}}
{{- default (printf "%s-postgres" (include "gatehouse.fullname" .)) .Values.postgres.existingSecret -}}
{{- end -}}

{{- define "gatehouse.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "gatehouse.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "gatehouse.postgres" -}}
{{- if or .Values.postgres.url .Values.postgres.existingSecret }}true{{ end -}}
{{- end -}}

{{/* The Service's names: what in-cluster clients dial, and what the certificate must name. */}}
{{- define "gatehouse.dnsNames" -}}
{{- $svc := include "gatehouse.fullname" . -}}
{{- $names := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- concat $names .Values.tls.extraDnsNames | toJson -}}
{{- end -}}

{{/* Refuse what cannot work, at install time rather than in a crash loop. */}}
{{- define "gatehouse.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "gatehouse.postgres" .)) -}}
{{- fail "replicaCount > 1 needs postgres.url or postgres.existingSecret: replicas share approvals and recordings through PostgreSQL" -}}
{{- end -}}
{{- if and .Values.postgres.url .Values.postgres.existingSecret -}}
{{- fail "set postgres.url or postgres.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret .Values.tls.certManager.enabled -}}
{{- fail "set tls.existingSecret or tls.certManager.enabled, not both" -}}
{{- end -}}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- if and (eq .Values.policy.source "configMap") (not .Values.policy.configMap) -}}
{{- fail "policy.source configMap needs policy.configMap: the name of a ConfigMap of .rego files" -}}
{{- end -}}
{{- if and (eq .Values.policy.source "bundle") (not .Values.policy.bundle.url) -}}
{{- fail "policy.source bundle needs policy.bundle.url" -}}
{{- end -}}
{{- if and .Values.approvals.web.enabled (not .Values.approvals.web.clientId) -}}
{{- fail "approvals.web.enabled needs approvals.web.clientId (one of the first issuer's audiences)" -}}
{{- end -}}
{{- end -}}
