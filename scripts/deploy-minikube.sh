#!/usr/bin/env bash
# dueflow on a local Minikube, from nothing: `make deploy-minikube` runs this. It
#
#   1. starts Minikube (profile dueflow),
#   2. installs Knative Serving with Kourier as its networking layer, and Envoy Gateway (with the
#      Gateway API CRDs) for the one origin's HTTPRoute (gateway/),
#   3. installs Knative Eventing with the Kafka Broker, KafkaSource and KafkaSink
#      (eventing-kafka-broker),
#   4. installs Strimzi and a one-node Kafka cluster (my-cluster in namespace kafka) with the
#      topic task-events,
#   5. installs Dapr,
#   6. starts a PostgreSQL and creates the Secret dueflow-secrets in namespace dueflow,
#   7. builds the six function images inside Minikube,
#   8. installs the chart (charts/dueflow with values-minikube.yaml),
#
# and prints how to reach the tasks API. Every step is idempotent: run it again to pick up code
# changes (new images, helm upgrade). docs/deploy.md explains each step and how to undo it.
#
# Needs minikube, kubectl and helm (3.14 or newer) on PATH, about 4 CPUs and 10 GB of memory for
# Minikube, and internet access for the release manifests and images.
#
# Environment (all optional):
#   MINIKUBE_PROFILE   default dueflow
#   MINIKUBE_CPUS      default 4
#   MINIKUBE_MEMORY    default 10g
#   MINIKUBE_DRIVER    default: minikube's choice (docker, podman, kvm2, ...)
#   KUBERNETES_VERSION default v1.32.0
#   KNATIVE_VERSION    Serving, Kourier, Eventing and the Kafka extensions (default 1.18.0)
#   ENVOY_GATEWAY_VERSION  Envoy Gateway, the Gateway API implementation (default 1.4.2; it
#                      brings the Gateway API CRDs, standard channel)
#   STRIMZI_VERSION    default 0.45.0 (with Kafka KAFKA_VERSION, default 3.9.0)
#   DAPR_VERSION       default 1.15.0
#   NAMESPACE          dueflow's namespace (default dueflow)
#   IMAGE_TAG          tag of the images built (default dev-<date and time>: every run makes
#                      new images, so Knative rolls out a new revision with the current code)
#   DAPR=1             run the Dapr variants of reminders, notify and commands (dapr.enabled)
#   SKIP_PLATFORM=1    skip steps 1-5 (the cluster is up): rebuild and upgrade only
#   DRY_RUN=1          print the commands instead of running them
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROFILE=${MINIKUBE_PROFILE:-dueflow}
CPUS=${MINIKUBE_CPUS:-4}
MEMORY=${MINIKUBE_MEMORY:-10g}
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.32.0}
KNATIVE_VERSION=${KNATIVE_VERSION:-1.18.0}
ENVOY_GATEWAY_VERSION=${ENVOY_GATEWAY_VERSION:-1.4.2}
STRIMZI_VERSION=${STRIMZI_VERSION:-0.45.0}
KAFKA_VERSION=${KAFKA_VERSION:-3.9.0}
DAPR_VERSION=${DAPR_VERSION:-1.15.0}
NAMESPACE=${NAMESPACE:-dueflow}
DRY_RUN=${DRY_RUN:-0}
WAIT=600s
BUILD_CONTEXT=""

KNATIVE=https://github.com/knative
KNATIVE_EXT=https://github.com/knative-extensions
FUNCTIONS=(tasks recurrence reminders notify commands deadletter assistant live web)

log() {
    printf '\n== %s\n' "$*" >&2
}

die() {
    echo "deploy-minikube: $*" >&2
    exit 1
}

# Run a command, or only show it with DRY_RUN=1.
run() {
    echo "+ $*" >&2
    if [[ "$DRY_RUN" != 1 ]]; then
        "$@"
    fi
}

# kubectl apply of a manifest read from standard input.
apply_stdin() {
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ kubectl apply -f - <<EOF" >&2
        cat >&2
        echo "EOF" >&2
    else
        kubectl apply -f -
    fi
}

# Whether a resource exists (always "no" in a dry run, so every step is shown).
exists() {
    [[ "$DRY_RUN" != 1 ]] && kubectl get "$@" >/dev/null 2>&1
}

random_hex() {
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

check_tools() {
    local tool
    for tool in minikube kubectl helm; do
        command -v "$tool" >/dev/null 2>&1 || [[ "$DRY_RUN" == 1 ]] \
            || die "$tool is not installed (docs/deploy.md, 'Local: Minikube' lists the tools)"
    done
}

start_minikube() {
    log "1/8 Minikube (profile $PROFILE)"
    local driver_args=()
    if [[ -n "${MINIKUBE_DRIVER:-}" ]]; then
        driver_args=(--driver "$MINIKUBE_DRIVER")
    fi
    run minikube start --profile "$PROFILE" --cpus "$CPUS" --memory "$MEMORY" \
        --kubernetes-version "$KUBERNETES_VERSION" "${driver_args[@]}"
    run kubectl config use-context "$PROFILE"
}

install_knative_serving() {
    log "2/8 Knative Serving $KNATIVE_VERSION with Kourier"
    local release="knative-v$KNATIVE_VERSION"
    run kubectl apply -f "$KNATIVE/serving/releases/download/$release/serving-crds.yaml"
    run kubectl wait --for=condition=Established crd --all --timeout="$WAIT"
    run kubectl apply -f "$KNATIVE/serving/releases/download/$release/serving-core.yaml"
    run kubectl apply -f "$KNATIVE_EXT/net-kourier/releases/download/$release/kourier.yaml"
    run kubectl patch configmap/config-network --namespace knative-serving --type merge \
        --patch '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
    # Hostnames <service>.<namespace>.127.0.0.1.sslip.io: with a port-forward to Kourier on
    # 127.0.0.1 they resolve (through sslip.io's DNS) to the port-forward.
    run kubectl patch configmap/config-domain --namespace knative-serving --type merge \
        --patch '{"data":{"127.0.0.1.sslip.io":""}}'
    # The functions mount an in-memory emptyDir on /tmp (their only writable path).
    run kubectl patch configmap/config-features --namespace knative-serving --type merge \
        --patch '{"data":{"kubernetes.podspec-volumes-emptydir":"enabled"}}'
    run kubectl wait --for=condition=Available deployment --all --namespace knative-serving \
        --timeout="$WAIT"
    run kubectl wait --for=condition=Available deployment --all --namespace kourier-system \
        --timeout="$WAIT"
    # The one origin: the chart's Gateway and HTTPRoute (gateway/) need a Gateway API
    # implementation; Envoy Gateway's chart installs the CRDs and the controller, and the
    # GatewayClass `eg` (the chart's route.gateway.className) names it.
    run helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm \
        --version "v$ENVOY_GATEWAY_VERSION" --namespace envoy-gateway-system --create-namespace \
        --wait --timeout 10m
    apply_stdin <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: eg
spec:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
EOF
}

install_knative_eventing() {
    log "3/8 Knative Eventing $KNATIVE_VERSION with the Kafka Broker, KafkaSource and KafkaSink"
    local release="knative-v$KNATIVE_VERSION"
    local kafka="$KNATIVE_EXT/eventing-kafka-broker/releases/download/$release"
    run kubectl apply -f "$KNATIVE/eventing/releases/download/$release/eventing-crds.yaml"
    run kubectl wait --for=condition=Established crd --all --timeout="$WAIT"
    run kubectl apply -f "$KNATIVE/eventing/releases/download/$release/eventing-core.yaml"
    run kubectl wait --for=condition=Available deployment --all --namespace knative-eventing \
        --timeout="$WAIT"
    # The controller (with the Kafka CRDs), then the data planes of the Broker, source and sink.
    run kubectl apply -f "$kafka/eventing-kafka-controller.yaml"
    run kubectl wait --for=condition=Established crd --all --timeout="$WAIT"
    run kubectl apply -f "$kafka/eventing-kafka-broker.yaml"
    run kubectl apply -f "$kafka/eventing-kafka-source.yaml"
    run kubectl apply -f "$kafka/eventing-kafka-sink.yaml"
    run kubectl wait --for=condition=Available deployment --all --namespace knative-eventing \
        --timeout="$WAIT"
}

install_kafka() {
    log "4/8 Strimzi $STRIMZI_VERSION and a one-node Kafka $KAFKA_VERSION (my-cluster in kafka)"
    run helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
        --version "$STRIMZI_VERSION" --namespace kafka --create-namespace --wait
    # One node that is both KRaft controller and broker; everything replicated once.
    apply_stdin <<EOF
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaNodePool
metadata:
  name: dual-role
  namespace: kafka
  labels:
    strimzi.io/cluster: my-cluster
spec:
  replicas: 1
  roles: [controller, broker]
  storage:
    type: jbod
    volumes:
      - id: 0
        type: persistent-claim
        size: 5Gi
        deleteClaim: true
        kraftMetadata: shared
---
apiVersion: kafka.strimzi.io/v1beta2
kind: Kafka
metadata:
  name: my-cluster
  namespace: kafka
  annotations:
    strimzi.io/node-pools: enabled
    strimzi.io/kraft: enabled
spec:
  kafka:
    version: $KAFKA_VERSION
    listeners:
      - name: plain
        port: 9092
        type: internal
        tls: false
    config:
      offsets.topic.replication.factor: 1
      transaction.state.log.replication.factor: 1
      transaction.state.log.min.isr: 1
      default.replication.factor: 1
      min.insync.replicas: 1
  entityOperator:
    topicOperator: {}
---
# The commands topic the KafkaSource (or the Dapr binding) consumes; producers key records by
# task id. The KafkaSink creates task-updates itself.
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata:
  name: task-events
  namespace: kafka
  labels:
    strimzi.io/cluster: my-cluster
spec:
  partitions: 3
  replicas: 1
EOF
    run kubectl wait kafka/my-cluster --for=condition=Ready --namespace kafka --timeout=900s
}

install_dapr() {
    log "5/8 Dapr $DAPR_VERSION"
    run helm repo add dapr https://dapr.github.io/helm-charts/ --force-update
    run helm upgrade --install dapr dapr/dapr --version "$DAPR_VERSION" \
        --namespace dapr-system --create-namespace --wait
}

install_database() {
    log "6/8 PostgreSQL and the Secret dueflow-secrets in namespace $NAMESPACE"
    exists namespace "$NAMESPACE" || run kubectl create namespace "$NAMESPACE"
    if exists secret dueflow-secrets --namespace "$NAMESPACE"; then
        echo "dueflow-secrets exists: kept (delete it to start over with new passwords)" >&2
    else
        local password jwt
        password=$(random_hex 16)
        jwt=$(random_hex 32)
        # The keys the chart reads (database-url, jwt-secret), and the database's own password.
        # No sendgrid-api-key: values-minikube.yaml writes e-mails to files instead.
        echo "+ kubectl create secret generic dueflow-secrets (generated values not shown)" >&2
        if [[ "$DRY_RUN" != 1 ]]; then
            kubectl create secret generic dueflow-secrets --namespace "$NAMESPACE" \
                --from-literal=database-url="postgresql+psycopg2://dueflow:$password@postgres.$NAMESPACE.svc.cluster.local:5432/dueflow" \
                --from-literal=jwt-secret="$jwt" \
                --from-literal=postgres-password="$password"
        fi
    fi
    apply_stdin <<EOF
apiVersion: v1
kind: Service
metadata:
  name: postgres
  namespace: $NAMESPACE
spec:
  selector:
    app: postgres
  ports:
    - port: 5432
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: postgres
  namespace: $NAMESPACE
spec:
  serviceName: postgres
  replicas: 1
  selector:
    matchLabels:
      app: postgres
  template:
    metadata:
      labels:
        app: postgres
    spec:
      containers:
        - name: postgres
          image: postgres:16.4-alpine
          env:
            - name: POSTGRES_USER
              value: dueflow
            - name: POSTGRES_DB
              value: dueflow
            - name: POSTGRES_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: dueflow-secrets
                  key: postgres-password
            - name: PGDATA
              value: /var/lib/postgresql/data/pgdata
          ports:
            - containerPort: 5432
          readinessProbe:
            exec:
              command: ["pg_isready", "-U", "dueflow", "-d", "dueflow"]
            periodSeconds: 5
          volumeMounts:
            - name: data
              mountPath: /var/lib/postgresql/data
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: 2Gi
EOF
    run kubectl rollout status statefulset/postgres --namespace "$NAMESPACE" --timeout="$WAIT"
}

build_images() {
    log "7/8 the function images (dev.local/dueflow/<function>:$IMAGE_TAG, inside Minikube)"
    # Only what the Dockerfile copies (as .dockerignore keeps it): minikube sends the whole
    # directory to the node, and the repository's .venv alone is hundreds of megabytes.
    local function
    BUILD_CONTEXT=$(mktemp -d)
    trap 'rm -rf "$BUILD_CONTEXT"' EXIT
    tar --create --exclude=__pycache__ --exclude='*.pyc' \
        Dockerfile .dockerignore shared/pyproject.toml shared/dueflow functions/*/main.py \
        | tar --extract --directory "$BUILD_CONTEXT"
    for function in "${FUNCTIONS[@]}"; do
        run minikube --profile "$PROFILE" image build \
            --tag "dev.local/dueflow/$function:$IMAGE_TAG" \
            --build-opt "build-arg=FUNCTION=$function" "$BUILD_CONTEXT"
    done
}

install_chart() {
    log "8/8 the dueflow chart"
    local args=(
        upgrade --install dueflow charts/dueflow
        --namespace "$NAMESPACE"
        --values charts/dueflow/values-minikube.yaml
        --set-string "image.tag=$IMAGE_TAG"
        --wait --timeout 15m
    )
    if [[ "${DAPR:-0}" == 1 ]]; then
        args+=(--set dapr.enabled=true)
    fi
    run helm "${args[@]}"
}

print_access() {
    local host="dueflow.127.0.0.1.sslip.io"
    local envoy="gateway.envoyproxy.io/owning-gateway-namespace=$NAMESPACE"
    envoy+=",gateway.envoyproxy.io/owning-gateway-name=dueflow"
    cat >&2 <<EOF

dueflow is running in Minikube (profile $PROFILE, namespace $NAMESPACE).

Reach the one origin through the Gateway (Envoy Gateway; leave this running in a second
terminal):

  kubectl port-forward --namespace envoy-gateway-system \\
    "\$(kubectl get service --namespace envoy-gateway-system --selector $envoy --output name)" \\
    8080:80

then (the route answers its host, route.host of values-minikube.yaml):

  curl -H 'Host: $host' http://127.0.0.1:8080/openapi.json

A bearer token for the API (HS256 with the Secret's jwt-secret; python with PyJWT, e.g. .venv):

  SECRET=\$(kubectl get secret dueflow-secrets --namespace $NAMESPACE \\
    --output jsonpath='{.data.jwt-secret}' | base64 --decode)
  TOKEN=\$(.venv/bin/python -c "import jwt, sys, time; print(jwt.encode({'sub': 'me', \\
    'email': 'me@example.com', 'exp': int(time.time()) + 3600}, sys.argv[1]))" "\$SECRET")
  curl -H 'Host: $host' -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/tasks

Each public Service keeps its own Knative host too, through Kourier, Knative's ingress:

  kubectl port-forward --namespace kourier-system service/kourier 8081:80
  curl http://tasks.$NAMESPACE.127.0.0.1.sslip.io:8081/healthz

Reminder e-mails are files in the notify pod's /tmp/eml; dead letters: docs/operations.md.
Remove everything: minikube delete --profile $PROFILE
EOF
}

check_tools
IMAGE_TAG=${IMAGE_TAG:-dev-$(date +%Y%m%d%H%M%S)}
[[ "$IMAGE_TAG" != latest ]] || die "IMAGE_TAG=latest is refused"
if [[ "${SKIP_PLATFORM:-0}" != 1 ]]; then
    start_minikube
    install_knative_serving
    install_knative_eventing
    install_kafka
    install_dapr
else
    run kubectl config use-context "$PROFILE"
fi
install_database
build_images
install_chart
print_access
