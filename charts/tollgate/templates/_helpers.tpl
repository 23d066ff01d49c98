{{/*
Names are fixed (one Tollgate per cluster): the operator, its sidecars and the
webhooks address one another by them.
*/}}
{{- define "tollgate.operatorName" -}}tollgate-operator{{- end }}

{{- define "tollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tollgate
{{- end }}

{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: tollgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* An image reference: repository, then @digest when set, else :tag (default appVersion). */}}
{{- define "tollgate.image" -}}
{{- $image := index .root.Values.images .name -}}
{{- if $image.digest -}}
{{ $image.repository }}@{{ $image.digest }}
{{- else -}}
{{ $image.repository }}:{{ $image.tag | default .root.Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* A quantity value as the operator's flags take it: a string as it is, a number without exponent, nothing for null. */}}
{{- define "tollgate.quantity" -}}
{{- if kindIs "string" . -}}
{{ . }}
{{- else if not (kindIs "invalid" .) -}}
{{ . | toJson }}
{{- end -}}
{{- end }}

{{/* Whether cert-manager issues the certificates (checked against certificates.manage). */}}
{{- define "tollgate.certManager" -}}
{{- $cm := .Values.certificates.certManager -}}
{{- if and $cm.enabled .Values.certificates.manage -}}
{{- fail "certificates.certManager.enabled needs certificates.manage=false: cert-manager, not the operator, then issues the certificates" -}}
{{- end -}}
{{- if and $cm.enabled (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) -}}
{{- fail "certificates.certManager.enabled needs cert-manager (cert-manager.io/v1) in the cluster; install it first, or pass --api-versions cert-manager.io/v1 to helm template" -}}
{{- end -}}
{{- if $cm.enabled }}true{{ end -}}
{{- end }}

{{/* Namespaces neither webhook sees: kube-system, the release namespace, and webhooks.excludedNamespaces. */}}
{{- define "tollgate.excludedNamespaces" -}}
{{- $names := concat (list "kube-system" .Release.Namespace) .Values.webhooks.excludedNamespaces | uniq -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values:
{{- range $names }}
    - {{ . | quote }}
{{- end }}
{{- end }}

{{/* The Redis URL the injector gives sidecars: a value, or $(TOLLGATE_AGENT_REDIS_URL) read from a Secret. */}}
{{- define "tollgate.redisUrl" -}}
{{- $r := .Values.redis -}}
{{- if and $r.url $r.existingSecret.name -}}
{{- fail "redis.url and redis.existingSecret.name are exclusive: set one" -}}
{{- end -}}
{{- if $r.existingSecret.name -}}
$(TOLLGATE_AGENT_REDIS_URL)
{{- else -}}
{{ $r.url }}
{{- end -}}
{{- end }}
