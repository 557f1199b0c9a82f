{{/* The release's base name: the release name, or <release>-credop when it does not say credop. */}}
{{- define "credop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "credop.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: credop
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "operator"). */}}
{{- define "credop.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "credop.componentLabels" -}}
{{ include "credop.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "credop.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "credop.operatorServiceAccount" -}}
{{- printf "%s-operator" (include "credop.fullname" .) -}}
{{- end -}}

{{- define "credop.serviceServiceAccount" -}}
{{- printf "%s-service" (include "credop.fullname" .) -}}
{{- end -}}

{{/* The credential service's base URL: https unless TLS is turned off, the port only when not the scheme's own. */}}
{{- define "credop.endpoint" -}}
{{- $tls := .Values.service.tls.enabled -}}
{{- $scheme := ternary "https" "http" $tls -}}
{{- $port := int .Values.service.port -}}
{{- $suffix := ternary "" (printf ":%d" $port) (eq $port (ternary 443 80 $tls)) -}}
{{- .Values.endpoint | default (printf "%s://%s.%s.svc%s" $scheme (include "credop.fullname" .) .Release.Namespace $suffix) -}}
{{- end -}}

{{- define "credop.serviceTlsSecret" -}}
{{- .Values.service.tls.secretName | default (printf "%s-service-tls" (include "credop.fullname" .)) -}}
{{- end -}}

{{/* The DNS names clients may use for the credential service. */}}
{{- define "credop.serviceHosts" -}}
{{- $service := include "credop.fullname" . -}}
{{- $namespace := .Release.Namespace -}}
{{- list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace) | toJson -}}
{{- end -}}

{{- define "credop.webhookService" -}}
{{- printf "%s-webhook" (include "credop.fullname" .) -}}
{{- end -}}

{{- define "credop.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "credop.fullname" .) -}}
{{- end -}}

{{/* The DNS names the API server may use for the webhook Service. */}}
{{- define "credop.webhookHosts" -}}
{{- $service := include "credop.webhookService" . -}}
{{- $namespace := .Release.Namespace -}}
{{- list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace) | toJson -}}
{{- end -}}

{{/* Whether the Prometheus Operator's monitoring.coreos.com/v1 API is served. */}}
{{- define "credop.hasMonitoring" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}
