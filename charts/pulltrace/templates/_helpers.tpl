{{/* Names, labels and small decisions shared by the templates. */}}

{{/* Chart name, or nameOverride. */}}
{{- define "pulltrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or the release name alone when it already holds the chart name. */}}
{{- define "pulltrace.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "pulltrace.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pulltrace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "pulltrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pulltrace
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Names and selectors of the two components. */}}
{{- define "pulltrace.webhook.name" -}}
{{- printf "%s-webhook" (include "pulltrace.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pulltrace.webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pulltrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "pulltrace.nodeAgent.name" -}}
{{- printf "%s-node-agent" (include "pulltrace.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pulltrace.nodeAgent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pulltrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-agent
{{- end -}}

{{- define "pulltrace.webhook.serviceAccountName" -}}
{{- default (include "pulltrace.webhook.name" .) .Values.webhook.serviceAccount.name -}}
{{- end -}}

{{- define "pulltrace.nodeAgent.serviceAccountName" -}}
{{- default (include "pulltrace.nodeAgent.name" .) .Values.nodeAgent.serviceAccount.name -}}
{{- end -}}

{{/* repository:tag, or repository@digest. */}}
{{- define "pulltrace.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the webhook (not a MutatingAdmissionPolicy) labels the pods. */}}
{{- define "pulltrace.webhook.enabled" -}}
{{- if not .Values.mutatingAdmissionPolicy.enabled -}}true{{- end -}}
{{- end -}}

{{/* Name of the cert-manager Certificate of the serving certificate, and of its Secret. */}}
{{- define "pulltrace.webhook.certificateName" -}}
{{- include "pulltrace.webhook.name" . -}}
{{- end -}}

{{- define "pulltrace.webhook.tlsSecretName" -}}
{{- if eq .Values.webhook.tls.mode "secret" -}}
{{- required "webhook.tls.secret.name is required when webhook.tls.mode is secret" .Values.webhook.tls.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "pulltrace.webhook.name" .) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces never sent to the webhook or the policy: the listed ones and the release's. */}}
{{- define "pulltrace.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- range uniq (concat .Values.webhook.excludeNamespaces (list .Release.Namespace)) }}
      - {{ . | quote }}
      {{- end }}
  - key: pulltrace.io/track
    operator: NotIn
    values:
      - "false"
{{- end -}}

{{/* CEL: true when the pod opts out with pulltrace.io/track: "false" (label or annotation). */}}
{{- define "pulltrace.cel.optedOut" -}}
(has(object.metadata.labels) && 'pulltrace.io/track' in object.metadata.labels && object.metadata.labels['pulltrace.io/track'] == 'false') || (has(object.metadata.annotations) && 'pulltrace.io/track' in object.metadata.annotations && object.metadata.annotations['pulltrace.io/track'] == 'false')
{{- end -}}

{{/* CEL: true when the pod asks for the readiness gate (annotation or a listed namespace). */}}
{{- define "pulltrace.cel.wantsGate" -}}
(has(object.metadata.annotations) && 'pulltrace.io/readiness-gate' in object.metadata.annotations && object.metadata.annotations['pulltrace.io/readiness-gate'] == 'true')
{{- with .Values.webhook.readinessGateNamespaces }} || request.namespace in {{ toJson . }}{{ end -}}
{{- end -}}

{{/* CEL: true when the pod already has the readiness gate. */}}
{{- define "pulltrace.cel.hasGate" -}}
has(object.spec.readinessGates) && object.spec.readinessGates.exists(g, g.conditionType == 'pulltrace.io/ImagesPulled')
{{- end -}}

{{/* "true" when the ValidatingAdmissionPolicy that keeps each agent to its node is rendered. */}}
{{- define "pulltrace.sameNodePolicy.enabled" -}}
{{- $mode := toString .Values.nodeAgent.sameNodePolicy.enabled -}}
{{- if or (eq $mode "true") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")) -}}
true
{{- end -}}
{{- end -}}

{{/* admissionregistration.k8s.io version of MutatingAdmissionPolicy: the value, or the newest served. */}}
{{- define "pulltrace.mutatingAdmissionPolicy.apiVersion" -}}
{{- if .Values.mutatingAdmissionPolicy.apiVersion -}}
{{- .Values.mutatingAdmissionPolicy.apiVersion -}}
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" -}}
admissionregistration.k8s.io/v1
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy" -}}
admissionregistration.k8s.io/v1beta1
{{- else if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1alpha1/MutatingAdmissionPolicy" -}}
admissionregistration.k8s.io/v1alpha1
{{- else -}}
{{- fail "mutatingAdmissionPolicy.enabled is true but the cluster serves no MutatingAdmissionPolicy API (Kubernetes 1.32+ with the MutatingAdmissionPolicy feature gate and --runtime-config); set mutatingAdmissionPolicy.apiVersion to render it anyway" -}}
{{- end -}}
{{- end -}}

{{/* Prometheus scrape annotations for a pod serving /metrics on the given port. */}}
{{- define "pulltrace.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ int64 .port | quote }}
prometheus.io/path: /metrics
{{- end -}}
