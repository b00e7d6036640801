{{/*
The chart's admission policies (docs/SECURITY.md):

  <fullname>           on BackgroundJobs: pod fields that change who or where a job's pod
                       runs, or what it may read, are refused unless the requester may create
                       Jobs in the namespace (the authorizer check); BackgroundJobs in the
                       namespaces the operator never serves are refused.
  <fullname>-operator  on the operator's own Job and CronJob writes: only in namespaces it
                       serves, only owned by a BackgroundJob.

Each pod rule is a CEL list of the offending field paths (empty: nothing to refuse), so that
the message names the field. The operator applies the same rules (api/podpolicy.py)
where the policy is not in force; the rule names are shared with it and with values.yaml.
Written for the CEL of Kubernetes 1.31 (no lists.flatten, no two-variable comprehensions).
*/}}

{{- define "bgj.policy.rules" -}}
serviceAccount hostNamespaces hostPath privileged capabilities nodeName extraContainers priorityClass podLabels secrets
{{- end -}}

{{- define "bgj.policy.name" -}}
{{- include "bgj.fullname" . -}}
{{- end -}}

{{- define "bgj.policy.operatorName" -}}
{{- printf "%s-operator" (include "bgj.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Namespaces never served: cluster-wide mode only (a list of namespaces is explicit). */}}
{{- define "bgj.excludedNamespaces" -}}
{{- if .Values.namespaces -}}
[]
{{- else if kindIs "slice" .Values.excludeNamespaces -}}
{{- toJson .Values.excludeNamespaces -}}
{{- else -}}
{{- toJson (list .Release.Namespace "kube-system" | uniq) -}}
{{- end -}}
{{- end -}}

{{/* The operator's view of the pod policy (BACKGROUNDJOBS_POD_POLICY). */}}
{{- define "bgj.policy.settings" -}}
{{- $p := .Values.podPolicy -}}
{{- $out := dict "exempt" $p.exempt "forbidden" $p.forbidden "trustedNamespaces" $p.trustedNamespaces "serviceAccounts" $p.serviceAccounts "secrets" $p.secrets -}}
{{- if and $p.enabled (has "Deny" $p.validationActions) -}}
{{- $_ := set $out "admission" (dict "policy" (include "bgj.policy.name" .) "binding" (include "bgj.policy.name" .)) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The name of container c, or '' (CEL). */}}
{{- define "bgj.policy.cname" -}}
(has(c.name) ? string(c.name) : '')
{{- end -}}

{{/*
Field paths of the containers (all three kinds) matching a CEL condition on `c`:
  (dict "cond" CEL "suffix" ".securityContext.privileged")
*/}}
{{- define "bgj.policy.inContainers" -}}
{{- $parts := list -}}
{{- range $kind := list "containers" "initContainers" "ephemeralContainers" -}}
{{- $parts = append $parts (printf "(has(variables.pod.%s) ? variables.pod.%s.filter(c, %s).map(c, 'spec.podTemplate.spec.%s[name=' + %s + ']%s') : [])" $kind $kind $.cond $kind (include "bgj.policy.cname" .) $.suffix) -}}
{{- end -}}
{{- join " + " $parts -}}
{{- end -}}

{{/*
Secret references: kwargsFrom, env and envFrom of every container, secret and projected
volumes, as one flat list of "path (Secret name)" for those not allowed in the namespace. CEL
before Kubernetes 1.34 has no lists.flatten: per-container lists are joined with ';' (no name
or path holds one) and split again. The requester's right to get each Secret is checked in
validations of their own ("bgj.policy.secretSlots"): an authorizer check is costly, and the
API server allows two per expression.
*/}}
{{- define "bgj.policy.secretListed" -}}
({{ . }} in variables.allowedSecrets)
{{- end -}}

{{- define "bgj.policy.rule.secrets" -}}
{{- $cname := include "bgj.policy.cname" . -}}
{{- $env := "(has(e.valueFrom.secretKeyRef.name) ? string(e.valueFrom.secretKeyRef.name) : '')" -}}
{{- $from := "(has(f.secretRef.name) ? string(f.secretRef.name) : '')" -}}
{{- $vol := "(has(v.secret.secretName) ? string(v.secret.secretName) : '')" -}}
{{- $src := "(has(s.secret.name) ? string(s.secret.name) : '')" -}}
{{- $kwarg := "string(k.secretKeyRef.name)" -}}
{{- $parts := list (printf "(has(object.spec.kwargsFrom) ? object.spec.kwargsFrom.filter(k, !%s).map(k, 'spec.kwargsFrom[name=' + k.name + '].secretKeyRef (Secret ' + %s + ')') : [])" (include "bgj.policy.secretListed" $kwarg) $kwarg) -}}
{{- range $kind := list "containers" "initContainers" "ephemeralContainers" -}}
{{- $envPaths := printf "(has(c.env) ? c.env.filter(e, has(e.valueFrom) && has(e.valueFrom.secretKeyRef) && !%s).map(e, 'spec.podTemplate.spec.%s[name=' + %s + '].env[name=' + (has(e.name) ? string(e.name) : '') + '].valueFrom.secretKeyRef (Secret ' + %s + ')') : [])" (include "bgj.policy.secretListed" $env) $kind $cname $env -}}
{{- $fromPaths := printf "(has(c.envFrom) ? c.envFrom.filter(f, has(f.secretRef) && !%s).map(f, 'spec.podTemplate.spec.%s[name=' + %s + '].envFrom.secretRef (Secret ' + %s + ')') : [])" (include "bgj.policy.secretListed" $from) $kind $cname $from -}}
{{- $parts = append $parts (printf "(has(variables.pod.%s) ? variables.pod.%s.map(c, (%s + %s).join(';')).join(';').split(';').filter(x, x != '') : [])" $kind $kind $envPaths $fromPaths) -}}
{{- end -}}
{{- $parts = append $parts (printf "variables.volumes.filter(v, has(v.secret) && !%s).map(v, 'spec.podTemplate.spec.volumes[name=' + (has(v.name) ? string(v.name) : '') + '].secret (Secret ' + %s + ')')" (include "bgj.policy.secretListed" $vol) $vol) -}}
{{- $parts = append $parts (printf "variables.volumes.map(v, has(v.projected) && has(v.projected.sources) ? v.projected.sources.filter(s, has(s.secret) && !%s).map(s, 'spec.podTemplate.spec.volumes[name=' + (has(v.name) ? string(v.name) : '') + '].projected.sources.secret (Secret ' + %s + ')').join(';') : '').join(';').split(';').filter(x, x != '')" (include "bgj.policy.secretListed" $src) $src) -}}
{{- join " + " $parts -}}
{{- end -}}

{{/* Distinct Secrets whose `get` the policy checks, one validation each; more need Jobs. */}}
{{- define "bgj.policy.secretSlots" -}}
8
{{- end -}}

{{/* The offending field paths of each rule (CEL lists of strings). */}}
{{- define "bgj.policy.rule.serviceAccount" -}}
variables.accountAllowed ? [] : (has(variables.pod.serviceAccountName) ? ['spec.podTemplate.spec.serviceAccountName'] : []) + (has(variables.pod.serviceAccount) ? ['spec.podTemplate.spec.serviceAccount'] : []) + (has(variables.pod.automountServiceAccountToken) && variables.pod.automountServiceAccountToken == true ? ['spec.podTemplate.spec.automountServiceAccountToken'] : []) + variables.volumes.filter(v, has(v.projected) && has(v.projected.sources) && v.projected.sources.exists(s, has(s.serviceAccountToken))).map(v, 'spec.podTemplate.spec.volumes[name=' + (has(v.name) ? string(v.name) : '') + '].projected.sources.serviceAccountToken')
{{- end -}}

{{- define "bgj.policy.rule.hostNamespaces" -}}
['hostNetwork', 'hostPID', 'hostIPC'].filter(f, f in variables.pod && variables.pod[f] == true).map(f, 'spec.podTemplate.spec.' + f)
{{- end -}}

{{- define "bgj.policy.rule.hostPath" -}}
variables.volumes.filter(v, has(v.hostPath)).map(v, 'spec.podTemplate.spec.volumes[name=' + (has(v.name) ? string(v.name) : '') + '].hostPath')
{{- end -}}

{{- define "bgj.policy.rule.privileged" -}}
{{ include "bgj.policy.inContainers" (dict "cond" "has(c.securityContext) && has(c.securityContext.privileged) && c.securityContext.privileged == true" "suffix" ".securityContext.privileged") }} + {{ include "bgj.policy.inContainers" (dict "cond" "has(c.securityContext) && has(c.securityContext.windowsOptions) && has(c.securityContext.windowsOptions.hostProcess) && c.securityContext.windowsOptions.hostProcess == true" "suffix" ".securityContext.windowsOptions.hostProcess") }} + (has(variables.pod.securityContext) && has(variables.pod.securityContext.windowsOptions) && has(variables.pod.securityContext.windowsOptions.hostProcess) && variables.pod.securityContext.windowsOptions.hostProcess == true ? ['spec.podTemplate.spec.securityContext.windowsOptions.hostProcess'] : [])
{{- end -}}

{{- define "bgj.policy.rule.capabilities" -}}
{{ include "bgj.policy.inContainers" (dict "cond" "has(c.securityContext) && has(c.securityContext.capabilities) && has(c.securityContext.capabilities.add) && c.securityContext.capabilities.add.exists(x, x != 'NET_BIND_SERVICE')" "suffix" ".securityContext.capabilities.add") }}
{{- end -}}

{{- define "bgj.policy.rule.nodeName" -}}
has(variables.pod.nodeName) ? ['spec.podTemplate.spec.nodeName'] : []
{{- end -}}

{{- define "bgj.policy.rule.extraContainers" -}}
{{- $cname := include "bgj.policy.cname" . -}}
(has(variables.pod.containers) ? variables.pod.containers.filter(c, !has(c.name) || c.name != 'handler').map(c, 'spec.podTemplate.spec.containers[name=' + {{ $cname }} + ']') : []) + (has(variables.pod.initContainers) ? variables.pod.initContainers.map(c, 'spec.podTemplate.spec.initContainers[name=' + {{ $cname }} + ']') : []) + (has(variables.pod.ephemeralContainers) ? variables.pod.ephemeralContainers.map(c, 'spec.podTemplate.spec.ephemeralContainers[name=' + {{ $cname }} + ']') : [])
{{- end -}}

{{- define "bgj.policy.rule.priorityClass" -}}
has(variables.pod.priorityClassName) && !(object.spec.queue in variables.queueClasses && variables.queueClasses[object.spec.queue] == variables.pod.priorityClassName) ? ['spec.podTemplate.spec.priorityClassName'] : []
{{- end -}}

{{- define "bgj.policy.rule.podLabels" -}}
has(variables.template.metadata) && has(variables.template.metadata.labels) ? variables.template.metadata.labels.map(k, 'spec.podTemplate.metadata.labels[' + k + ']') : []
{{- end -}}

{{/* Why a rule refuses, after the field paths (CEL string). */}}
{{- define "bgj.policy.why" -}}
{{- if eq .rule "secrets" -}}
' (rule secrets): only a requester who may get this Secret, or create Jobs in namespace ' + request.namespace + ', may pass it to a job' + (size(variables.allowedSecrets) > 0 ? '; allowed for everyone here: ' + variables.allowedSecrets.join(', ') : '')
{{- else if eq .rule "serviceAccount" -}}
' (rule serviceAccount): only a requester who may create Jobs in namespace ' + request.namespace + ' may give a job the ServiceAccount ' + variables.accountName + ' or its token' + (size(variables.allowedServiceAccounts) > 0 ? '; allowed for everyone here: ' + variables.allowedServiceAccounts.join(', ') : '')
{{- else -}}
' (rule {{ .rule }}): only a requester who may create Jobs in namespace ' + request.namespace + ' may ask for it'
{{- end -}}
{{- end -}}
