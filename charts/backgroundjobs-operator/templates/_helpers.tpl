{{/* Chart name, cut to the 63 characters of a label value. */}}
{{- define "bgj.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects. */}}
{{- define "bgj.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "bgj.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels of every object of the release. */}}
{{- define "bgj.commonLabels" -}}
helm.sh/chart: {{ include "bgj.chart" . }}
app.kubernetes.io/name: {{ include "bgj.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: backgroundjobs
{{- end -}}

{{/* The labels of the operator's objects. */}}
{{- define "bgj.labels" -}}
{{ include "bgj.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The labels that select the operator's pods. */}}
{{- define "bgj.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bgj.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "bgj.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bgj.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* A repository behind the registry in force: global.imageRegistry, else the one given. */}}
{{- define "bgj.withRegistry" -}}
{{- $registry := default .registry .global.imageRegistry | trimSuffix "/" -}}
{{- if $registry -}}{{ $registry }}/{{ end -}}{{ .repository }}
{{- end -}}

{{/* The operator image: [registry/]repository, then @digest when given, else :tag. */}}
{{- define "bgj.image" -}}
{{- $repository := include "bgj.withRegistry" (dict "global" (.Values.global | default dict) "registry" .Values.image.registry "repository" .Values.image.repository) -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The image of jobs that name none: defaultImage as given, else the example handler image
of this version behind global.imageRegistry; empty when the operator's own default applies. */}}
{{- define "bgj.defaultJobImage" -}}
{{- $global := .Values.global | default dict -}}
{{- if .Values.defaultImage -}}
{{- .Values.defaultImage -}}
{{- else if $global.imageRegistry -}}
{{- printf "%s:%s" (include "bgj.withRegistry" (dict "global" $global "registry" "" "repository" "backgroundjobs/examples")) .Chart.AppVersion -}}
{{- end -}}
{{- end -}}

{{- define "bgj.leaseName" -}}
{{- default (include "bgj.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "bgj.metricsServiceName" -}}
{{- printf "%s-metrics" (include "bgj.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The operator's permissions on the objects it serves, in every watched namespace. Derived from
controller/kube.py and kopf (on.event handlers only: no finalizers, no progress annotations):
  backgroundjobs          get (a parent or a missed object), list/watch (kopf), patch (kopf
                          removes its finalizer from objects that still carry one), delete
                          (retention: a finished job deletes itself)
  backgroundjobs/status   patch (JSON merge patch of status)
  backgroundjobs/finalizers  update: the Jobs' and CronJobs' ownerReferences set
                          blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement
                          admission plugin allows only to who may update the owner's finalizers
  jobs                    get/list/watch, create, delete (cancel, retention), patch (a
                          held recurring run admitted: spec.suspend false)
  cronjobs                get/list/watch, create, update (add-or-update of a Recurring job)
  pods                    list (the handler's termination message: the result; what keeps
                          a run's pod from starting; the running pods, for their progress)
  pods/log                get (a running handler's progress records: status.progress)
  events                  create (one per transition); list (the Job controller's
                          FailedCreate Events of a run that has no pod)
  configmaps              create, get (a batch's items, created before its Job; get adopts
                          one an interrupted earlier attempt created)
*/}}
{{- define "bgj.operatorRules" -}}
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobs"]
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobs/status"]
  verbs: ["patch"]
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobs/finalizers"]
  verbs: ["update"]
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobqueues"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["backgroundjobs.dev"]
  resources: ["backgroundjobqueues/status"]
  verbs: ["patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "get"]
# A queue handed to Kueue (spec.kueue): the Workloads of its Jobs, for their phase. Harmless
# where Kueue is not installed (the operator then says so in the job's condition).
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["get", "list"]
{{- end -}}

{{/* Refuse values the schema cannot express. */}}
{{- define "bgj.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: several unelected operators would all act. Set leaderElection.enabled=true, or replicaCount=1." (int .Values.replicaCount)) -}}
{{- end -}}
{{- end -}}

{{/* The labels that select the `helm test` pod (the NetworkPolicy lets it scrape). */}}
{{- define "bgj.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "bgj.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end -}}
