{{/*
The chart name, or nameOverride.
*/}}
{{- define "seedfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else the release name,
plus the chart name unless the release name already contains it. Truncated so
that suffixes such as "-leader-election" still fit in 63 characters.
*/}}
{{- define "seedfleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The name of the operator's Deployment, ClusterRole and ClusterRoleBinding.
*/}}
{{- define "seedfleet.operatorName" -}}
{{- printf "%s-operator" (include "seedfleet.fullname" .) }}
{{- end }}

{{/*
The helm.sh/chart label.
*/}}
{{- define "seedfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "seedfleet.labels" -}}
helm.sh/chart: {{ include "seedfleet.chart" . }}
{{ include "seedfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seedfleet
{{- end }}

{{/*
Labels that select the operator's pods. The component label keeps the
metrics Service from also selecting seed pods of a SeedNode that happens to
share the release's name.
*/}}
{{- define "seedfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seedfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The operator's ServiceAccount.
*/}}
{{- define "seedfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "seedfleet.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image; the seed pods get the same one unless seedImage is set.
*/}}
{{- define "seedfleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
"true" when the operator runs with --leader-elect: asked for, or needed
because more than one replica runs.
*/}}
{{- define "seedfleet.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/*
"true" when the chart creates the metrics Service.
*/}}
{{- define "seedfleet.metricsService" -}}
{{- if or .Values.metrics.service.enabled .Values.metrics.serviceMonitor.enabled }}true{{ end }}
{{- end }}
