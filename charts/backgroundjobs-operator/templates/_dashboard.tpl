{{/* The dashboard's objects: names, labels, validation. */}}
{{- define "bgj.dashboard.fullname" -}}
{{- printf "%s-dashboard" (include "bgj.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bgj.dashboard.labels" -}}
{{ include "bgj.commonLabels" . }}
app.kubernetes.io/component: dashboard
{{- end -}}

{{- define "bgj.dashboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bgj.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end -}}

{{/* The dashboard's image: the operator's (registry and digest included) unless
dashboard.image names another repository or tag; global.imageRegistry applies either way. */}}
{{- define "bgj.dashboard.image" -}}
{{- $d := .Values.dashboard.image -}}
{{- if or $d.repository $d.tag -}}
{{- $registry := ternary "" .Values.image.registry (ne $d.repository "") -}}
{{- $repository := include "bgj.withRegistry" (dict "global" (.Values.global | default dict) "registry" $registry "repository" (default .Values.image.repository $d.repository)) -}}
{{- printf "%s:%s" $repository (default (default .Chart.AppVersion .Values.image.tag) $d.tag) -}}
{{- else -}}
{{- include "bgj.image" . -}}
{{- end -}}
{{- end -}}

{{/*
What the dashboard reads: the jobs (list/watch, the one watch behind its cache; get for a
job's page), their Jobs and pods (a job's runs and attempts), the pods' logs and the Events.
*/}}
{{- define "bgj.dashboard.readRules" -}}
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobs"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobqueues"]
  verbs: ["list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
{{- end -}}

{{/* Actions as the dashboard's own ServiceAccount (actions.impersonate=false). */}}
{{- define "bgj.dashboard.actionRules" -}}
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobs"]
  verbs: ["patch", "delete"]
{{- end -}}

{{- define "bgj.dashboard.validate" -}}
{{- if and .Values.dashboard.actions.enabled (not .Values.dashboard.authProxy.enabled) -}}
{{- fail "dashboard.actions.enabled needs dashboard.authProxy.enabled: the dashboard never offers actions without an authenticating proxy in front of it (see the chart README)" -}}
{{- end -}}
{{- if and .Values.dashboard.authProxy.enabled (not .Values.dashboard.authProxy.container.image) -}}
{{- fail "dashboard.authProxy.enabled needs dashboard.authProxy.container (at least image, and args that forward to the dashboard on 127.0.0.1)" -}}
{{- end -}}
{{- end -}}
