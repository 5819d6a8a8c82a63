#!/usr/bin/env bash
# Install or upgrade dueflow on a prepared cluster with the chart and the cloud's values file, or
# roll it back. `make deploy CLOUD=aks|gke` runs the first; docs/deploy.md walks through both.
#
#   scripts/deploy.sh                 # helm upgrade --install --atomic with IMAGE_TAG
#   scripts/deploy.sh rollback [REV]  # helm rollback to REV (default: the previous revision)
#   scripts/deploy.sh status          # the release's history and the Services' readiness
#
# Environment:
#   CLOUD             aks or gke: charts/dueflow/values-$CLOUD.yaml (minikube works too)
#   IMAGE_TAG         the images' tag, the commit SHA release.yml pushed (required; never latest)
#   IMAGE_REPOSITORY  where the images are (default ghcr.io/dueflow: <repository>/<function>)
#   NAMESPACE         the release namespace (default dueflow)
#   RELEASE           the Helm release name (default dueflow)
#   KUBE_CONTEXT      the kubectl/helm context (default: the current one)
#   EXTRA_VALUES      more values files, space-separated, applied after the cloud's
#   DAPR=1            switch the Dapr wiring on (--set dapr.enabled=true)
#   TIMEOUT           how long helm waits for the hook and the Services (default 10m)
#
# The cluster prerequisites (Knative, Kafka, Dapr if DAPR=1) and the Secret dueflow-secrets must
# exist; the script checks for them before it changes anything.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CHART=charts/dueflow
NAMESPACE=${NAMESPACE:-dueflow}
RELEASE=${RELEASE:-dueflow}
TIMEOUT=${TIMEOUT:-10m}

die() {
    echo "deploy: $*" >&2
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"
}

context_args=()
if [[ -n "${KUBE_CONTEXT:-}" ]]; then
    context_args=(--context "$KUBE_CONTEXT")
fi

kube() {
    kubectl "${context_args[@]}" "$@"
}

helm_() {
    if [[ -n "${KUBE_CONTEXT:-}" ]]; then
        helm --kube-context "$KUBE_CONTEXT" "$@"
    else
        helm "$@"
    fi
}

# Helm 3 calls it --atomic; Helm 4 renamed it --rollback-on-failure.
atomic_flag() {
    local version
    version=$(helm version --template '{{.Version}}' 2>/dev/null || echo v3)
    if [[ "$version" == v3* ]]; then
        echo --atomic
    else
        echo --rollback-on-failure
    fi
}

check_prerequisites() {
    local crd missing=()
    local crds=(
        services.serving.knative.dev
        brokers.eventing.knative.dev
        triggers.eventing.knative.dev
        pingsources.sources.knative.dev
        sinkbindings.sources.knative.dev
        kafkasources.sources.knative.dev
        kafkasinks.eventing.knative.dev
        # the one origin (route.enabled): the Gateway API, standard channel
        gateways.gateway.networking.k8s.io
        httproutes.gateway.networking.k8s.io
        referencegrants.gateway.networking.k8s.io
    )
    if [[ "${DAPR:-0}" == 1 ]]; then
        crds+=(components.dapr.io)
    fi
    for crd in "${crds[@]}"; do
        kube get crd "$crd" >/dev/null 2>&1 || missing+=("$crd")
    done
    if ((${#missing[@]})); then
        die "the cluster lacks ${missing[*]}: install the prerequisites first (docs/deploy.md)"
    fi
    kube get namespace "$NAMESPACE" >/dev/null 2>&1 \
        || die "namespace $NAMESPACE does not exist: kubectl create namespace $NAMESPACE"
    kube get secret dueflow-secrets --namespace "$NAMESPACE" >/dev/null 2>&1 \
        || die "Secret dueflow-secrets is missing in $NAMESPACE (docs/deploy.md, 'The Secret')"
}

deploy() {
    [[ -n "${CLOUD:-}" ]] || die "set CLOUD=aks or CLOUD=gke"
    local values="$CHART/values-$CLOUD.yaml"
    [[ -f "$values" ]] || die "no $values: CLOUD is one of aks, gke, minikube"
    [[ -n "${IMAGE_TAG:-}" ]] || die "set IMAGE_TAG to the commit SHA whose images to deploy"
    [[ "$IMAGE_TAG" != latest ]] || die "IMAGE_TAG=latest is refused: deploy a commit SHA"

    local args=(
        upgrade --install "$RELEASE" "$CHART"
        --namespace "$NAMESPACE"
        --values "$values"
        --set-string "image.tag=$IMAGE_TAG"
        "$(atomic_flag)"
        --wait
        --timeout "$TIMEOUT"
    )
    if [[ -n "${IMAGE_REPOSITORY:-}" ]]; then
        args+=(--set-string "image.repository=$IMAGE_REPOSITORY")
    fi
    local extra
    for extra in ${EXTRA_VALUES:-}; do
        [[ -f "$extra" ]] || die "EXTRA_VALUES: no file $extra"
        args+=(--values "$extra")
    done
    if [[ "${DAPR:-0}" == 1 ]]; then
        args+=(--set dapr.enabled=true)
    fi

    check_prerequisites
    echo "deploy: $RELEASE ($IMAGE_TAG) to namespace $NAMESPACE of context \
$(kube config current-context 2>/dev/null || echo '?') with $values" >&2
    helm_ "${args[@]}"
    status
}

rollback() {
    local revision=${1:-}
    # Without a revision helm rolls back to the previous one.
    helm_ rollback "$RELEASE" ${revision:+"$revision"} --namespace "$NAMESPACE" --wait \
        --timeout "$TIMEOUT"
    status
}

status() {
    helm_ history "$RELEASE" --namespace "$NAMESPACE" --max 5
    kube get ksvc --namespace "$NAMESPACE"
    echo "deploy: the tasks API is at $(kube get ksvc tasks --namespace "$NAMESPACE" \
--output jsonpath='{.status.url}' 2>/dev/null || echo '?')" >&2
}

command=${1:-deploy}
case "$command" in
    deploy | rollback | status)
        need helm "https://helm.sh/docs/intro/install/ (3.14 or newer)"
        need kubectl "https://kubernetes.io/docs/tasks/tools/"
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d'
        exit 0
        ;;
    *) die "unknown command '$command': deploy, rollback [REVISION] or status" ;;
esac
case "$command" in
    deploy) deploy ;;
    rollback) rollback "${2:-}" ;;
    status) status ;;
esac
