{{/*
Shared pieces of the dueflow templates. The functions, in the order of knative/:
*/}}
{{- define "dueflow.functionNames" -}}
tasks recurrence reminders notify commands deadletter assistant live web
{{- end }}

{{/* The public functions; the others are reached from inside the cluster only. */}}
{{- define "dueflow.publicFunctionNames" -}}
tasks assistant live web
{{- end }}

{{/* The ASGI functions: main.py serves them with uvicorn, not functions-framework. */}}
{{- define "dueflow.asgiFunctionNames" -}}
assistant live
{{- end }}

{{/* The functions that have a Dapr variant (knative/dapr/). */}}
{{- define "dueflow.daprFunctionNames" -}}
reminders notify commands
{{- end }}

{{/* Labels the chart adds to every resource, on top of those of the plain manifests. */}}
{{- define "dueflow.labels" -}}
app.kubernetes.io/part-of: dueflow
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ include "dueflow.tag" . | trunc 63 | trimSuffix "-" | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image tag of the release: image.tag, else the chart's appVersion. */}}
{{- define "dueflow.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- end }}

{{/*
The image of one function. Argument: dict "root" $ "name" <function> "image" <override map>.
*/}}
{{- define "dueflow.image" -}}
{{- $root := .root -}}
{{- $override := .image | default dict -}}
{{- $repository := $override.repository | default (printf "%s/%s" $root.Values.image.repository .name) -}}
{{- if $override.digest -}}
{{- printf "%s@%s" $repository $override.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository ($override.tag | default (include "dueflow.tag" $root)) -}}
{{- end -}}
{{- end }}

{{/* The service account of the functions and the migration Job, or "" for the default one. */}}
{{- define "dueflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default "dueflow" -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end }}

{{/* Whether function .name runs its Dapr variant. Argument: dict "root" $ "name" <function>. */}}
{{- define "dueflow.usesDapr" -}}
{{- $fn := index .root.Values.functions .name -}}
{{- if and .root.Values.dapr.enabled (hasKey $fn "dapr") $fn.dapr.enabled -}}true{{- end -}}
{{- end }}

{{/* The autoscaling block in force for a function (its Dapr variant's when that runs). */}}
{{- define "dueflow.autoscaling" -}}
{{- $fn := index .root.Values.functions .name -}}
{{- if include "dueflow.usesDapr" . -}}
{{- toYaml $fn.dapr.autoscaling -}}
{{- else -}}
{{- toYaml $fn.autoscaling -}}
{{- end -}}
{{- end }}

{{/*
Checks the schema cannot express: they compare two values. Fails the render with the reason.
*/}}
{{- define "dueflow.validate" -}}
{{- $root := . -}}
{{- /* the one relay holding the outbox lease also keeps a connection for its LISTEN */ -}}
{{- $connections := 1 -}}
{{- range $name := splitList " " (include "dueflow.functionNames" $root) -}}
{{- $scale := include "dueflow.autoscaling" (dict "root" $root "name" $name) | fromYaml -}}
{{- $low := int $scale.minScale -}}
{{- $high := int $scale.maxScale -}}
{{- $slots := int $scale.containerConcurrency -}}
{{- if gt $low $high -}}
{{- fail (printf "functions.%s: minScale %d is above maxScale %d" $name $low $high) -}}
{{- end -}}
{{- if and (eq $scale.metric "concurrency") (gt (float64 $scale.target) (float64 $slots)) -}}
{{- fail (printf "functions.%s: target %v is above containerConcurrency %d, so it is never reached" $name $scale.target $slots) -}}
{{- end -}}
{{- /* notify: one more per pod, on which a batch records each accepted e-mail at once */ -}}
{{- $perPod := add $slots (ternary 4 3 (eq $name "notify")) -}}
{{- /* live: its threads, its tail's reads and its LISTEN (its slots are open streams) */ -}}
{{- if eq $name "live" -}}
{{- $perPod = add (int (index $root.Values.functions $name).threads) 2 -}}
{{- end -}}
{{- if ne $name "web" -}}{{- /* static files: no database connection */ -}}
{{- $connections = add $connections (mul $high $perPod) -}}
{{- end -}}
{{- end -}}
{{- if gt (int $connections) (int $root.Values.database.maxConnections) -}}
{{- fail (printf "the functions may hold %d database connections (maxScale x (containerConcurrency + 3, notify + 4, live threads + 2), summed, plus the relay's LISTEN), above database.maxConnections %d: lower a maxScale or containerConcurrency, or raise the database's max_connections and database.maxConnections" (int $connections) (int $root.Values.database.maxConnections)) -}}
{{- end -}}
{{- if and (eq $root.Values.email.backend "eml") (not (hasPrefix "/tmp" $root.Values.email.emlDir)) -}}
{{- fail "email.emlDir must be under /tmp, the only writable path" -}}
{{- end -}}
{{- end }}

{{/* An environment variable from the existing Secret. Argument: dict "root" $ "name" "key". */}}
{{- define "dueflow.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.existingSecret.name }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/*
The environment of one function after FUNCTION_TARGET, THREADS and DATABASE_URL, in the order of
the plain manifests. Argument: dict "root" $ "name" <function> "dapr" <"true" or "">.
*/}}
{{- define "dueflow.functionEnv" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- /* the public functions check bearer tokens, except web: static files and sign-in settings */ -}}
{{- if and (ne .name "web") (has .name (splitList " " (include "dueflow.publicFunctionNames" $root))) }}
{{- if eq $values.auth.mode "jwtSecret" }}
{{ include "dueflow.secretEnv" (dict "root" $root "name" "DUEFLOW_JWT_SECRET" "key" $values.existingSecret.keys.jwtSecret) }}
{{- else if $values.auth.jwksUrl }}
- name: DUEFLOW_JWKS_URL
  value: {{ $values.auth.jwksUrl | quote }}
{{- else }}
{{ include "dueflow.secretEnv" (dict "root" $root "name" "DUEFLOW_JWKS_URL" "key" $values.existingSecret.keys.jwksUrl) }}
{{- end }}
{{- with $values.auth.audience }}
- name: DUEFLOW_JWT_AUDIENCE
  value: {{ . | quote }}
{{- end }}
{{- with (eq .name "assistant" | ternary ($values.auth.issuer | default $values.assistant.issuer) $values.auth.issuer) }}
- name: DUEFLOW_JWT_ISSUER
  value: {{ . | quote }}
{{- end }}
{{- if eq .name "assistant" }}
- name: DUEFLOW_MCP_RESOURCE_URL
  value: {{ $values.assistant.resourceUrl | default (printf "%s://%s/mcp" $values.route.scheme $values.route.host) | quote }}
- name: DUEFLOW_MCP_ALLOWED_HOSTS
  value: {{ $values.assistant.allowedHosts | default (printf "%s,assistant.%s.svc.cluster.local" $values.route.host $root.Release.Namespace) | quote }}
{{- end }}
{{- if eq .name "live" }}
- name: DUEFLOW_LIVE_HEARTBEAT
  value: "15"
- name: DUEFLOW_LIVE_MAX_STREAM
  value: {{ sub (int (index $values.functions "live").timeoutSeconds) 30 | toString | quote }}
{{- end }}
{{- if eq .name "tasks" }}
- name: DUEFLOW_CORS_ORIGINS
  value: {{ prepend (splitList "," $values.cors.origins) (printf "%s://%s" $values.route.scheme $values.route.host) | compact | uniq | join "," | quote }}
{{- end }}
{{- with and (eq .name "tasks") $values.publicUrl }}
- name: DUEFLOW_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- else if eq .name "web" }}
{{- with $values.oidc.issuer }}
- name: DUEFLOW_OIDC_ISSUER
  value: {{ . | quote }}
- name: DUEFLOW_OIDC_CLIENT_ID
  value: {{ $values.oidc.clientId | required "oidc.clientId is required with oidc.issuer" | quote }}
- name: DUEFLOW_OIDC_SCOPE
  value: {{ $values.oidc.scope | quote }}
{{- end }}
{{- else if and (eq .name "notify") .dapr }}
- name: DUEFLOW_EMAIL_BACKEND
  value: dapr
- name: DUEFLOW_DAPR_EMAIL_BINDING
  value: sendgrid
- name: DUEFLOW_EMAIL_FROM
  value: {{ $values.email.from | quote }}
{{- else if eq .name "notify" }}
- name: DUEFLOW_EMAIL_BACKEND
  value: {{ $values.email.backend }}
- name: DUEFLOW_EMAIL_FROM
  value: {{ $values.email.from | quote }}
{{- if eq $values.email.backend "eml" }}
- name: DUEFLOW_EML_DIR
  value: {{ $values.email.emlDir | quote }}
{{- end }}
{{ include "dueflow.secretEnv" (dict "root" $root "name" "SENDGRID_API_KEY" "key" $values.existingSecret.keys.sendgridApiKey "optional" true) }}
{{ include "dueflow.secretEnv" (dict "root" $root "name" "SMTP_URL" "key" $values.existingSecret.keys.smtpUrl "optional" true) }}
{{- else if and (eq .name "reminders") .dapr }}
- name: DUEFLOW_REMINDER_LATE_AFTER
  value: {{ $values.functions.reminders.dapr.lateAfterSeconds | int | quote }}
{{- if $values.functions.reminders.dapr.jobs }}
- name: DUEFLOW_REMINDER_JOBS
  value: dapr
{{- end }}
{{- end }}
{{- with $values.logLevel }}
- name: DUEFLOW_LOG_LEVEL
  value: {{ . }}
{{- end }}
{{- with (index $values.functions .name).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The Knative Service of one function: knative/100-<name>.yaml, or knative/dapr/100-<name>.yaml
when its Dapr variant runs. Argument: dict "root" $ "name" <function>.
*/}}
{{- define "dueflow.service" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $fn := index $root.Values.functions $name -}}
{{- $dapr := include "dueflow.usesDapr" . -}}
{{- $scale := include "dueflow.autoscaling" . | fromYaml -}}
{{- $account := include "dueflow.serviceAccountName" $root -}}
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    app.kubernetes.io/name: {{ $name }}
    {{- include "dueflow.labels" $root | nindent 4 }}
    {{- if ne $name "web" }}
    # The SinkBinding selects Services by this label and injects K_SINK (the Broker).
    dueflow.dev/emits-events: "true"
    {{- end }}
    {{- if not (has $name (splitList " " (include "dueflow.publicFunctionNames" $root))) }}
    # Only web, tasks, assistant and live are public; the others are reached from inside the cluster.
    networking.knative.dev/visibility: cluster-local
    {{- end }}
spec:
  template:
    metadata:
      {{- with $root.Values.podLabels }}
      labels:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      annotations:
        autoscaling.knative.dev/metric: {{ $scale.metric }}
        autoscaling.knative.dev/target: {{ $scale.target | toString | quote }}
        autoscaling.knative.dev/min-scale: {{ $scale.minScale | int | toString | quote }}
        autoscaling.knative.dev/max-scale: {{ $scale.maxScale | int | toString | quote }}
        {{- with $scale.scaleToZeroPodRetentionPeriod }}
        autoscaling.knative.dev/scale-to-zero-pod-retention-period: {{ . | quote }}
        {{- end }}
        {{- if $dapr }}
        dapr.io/enabled: "true"
        dapr.io/app-id: {{ $name }}
        # daprd delivers input bindings straight to this port, past the queue-proxy.
        dapr.io/app-port: "8080"
        dapr.io/enable-metrics: "true"
        dapr.io/metrics-port: {{ $root.Values.dapr.metricsPort | int | toString | quote }}
        # The built-in secret store is unscoped; the components use the scoped one.
        dapr.io/disable-builtin-k8s-secret-store: "true"
        {{- end }}
    spec:
      {{- with $account }}
      serviceAccountName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containerConcurrency: {{ $scale.containerConcurrency | int }}
      timeoutSeconds: {{ $fn.timeoutSeconds | int }}
      containers:
        - name: {{ $name }}
          image: {{ include "dueflow.image" (dict "root" $root "name" $name "image" $fn.image) }}
          {{- with $root.Values.image.pullPolicy }}
          imagePullPolicy: {{ . }}
          {{- end }}
          {{- if has $name (splitList " " (include "dueflow.asgiFunctionNames" $root)) }}
          # An ASGI app: main.py serves it with uvicorn, not functions-framework.
          command: ["python", "/app/main.py"]
          {{- else if and $dapr (eq $name "commands") }}
          # functions-framework's server letting the sidecar's ce_* headers through.
          command: ["python", "-m", "dueflow.serve"]
          {{- end }}
          ports:
            # Knative sets PORT to this; the functions-framework server listens on it.
            - name: http1
              containerPort: 8080
          env:
            - name: FUNCTION_TARGET
              value: {{ $name }}
            {{- if eq $name "live" }}
            # Threads of the blocking calls; the streams wait on the event loop.
            - name: THREADS
              value: {{ $fn.threads | int | toString | quote }}
            {{- else }}
            # gunicorn threads: containerConcurrency + 2 spare for the probes.
            - name: THREADS
              value: {{ add (int $scale.containerConcurrency) 2 | toString | quote }}
            {{- end }}
            {{- if ne $name "web" }}
            {{- include "dueflow.secretEnv" (dict "root" $root "name" "DATABASE_URL" "key" $root.Values.existingSecret.keys.databaseUrl) | nindent 12 }}
            {{- end }}
            {{- with include "dueflow.functionEnv" (dict "root" $root "name" $name "dapr" $dapr) | trim }}
            {{- . | nindent 12 }}
            {{- end }}
          resources:
            {{- toYaml $fn.resources | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: 8080
          livenessProbe:
            httpGet:
              path: /healthz
              port: 8080
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          {{- include "dueflow.containerSecurity" . | nindent 10 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        # Needs the Knative feature kubernetes.podspec-volumes-emptydir.
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 16Mi
{{- end }}

{{/* The container security context of every dueflow container (user 10001 of the image). */}}
{{- define "dueflow.containerSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
{{- end }}
