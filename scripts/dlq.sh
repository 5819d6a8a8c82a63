#!/usr/bin/env bash
# The dead letters of dueflow in a cluster: what `make dlq-list` and `make dlq-replay` do for the
# `make run` stack, run inside the cluster (docs/operations.md, "Dead letters").
#
#   scripts/dlq.sh list [--all]      # what died, and why (--all: replayed ones too)
#   scripts/dlq.sh replay [ID ...]   # send them (or only these) to the Broker again
#
# It starts a one-off pod with the image of the release's deadletter Service (so the code matches
# the database), DATABASE_URL from the same Secret key the Service uses, and DUEFLOW_BROKER_URL
# set to the Broker's address; the pod is deleted when the command ends.
#
# Environment: NAMESPACE (default dueflow), KUBE_CONTEXT (default: the current context).
set -euo pipefail

NAMESPACE=${NAMESPACE:-dueflow}

die() {
    echo "dlq: $*" >&2
    exit 1
}

kube() {
    if [[ -n "${KUBE_CONTEXT:-}" ]]; then
        kubectl --context "$KUBE_CONTEXT" --namespace "$NAMESPACE" "$@"
    else
        kubectl --namespace "$NAMESPACE" "$@"
    fi
}

# A JSON string literal (the values here are image names, URLs and Secret names).
json_string() {
    local value=${1//\\/\\\\}
    printf '"%s"' "${value//\"/\\\"}"
}

command -v kubectl >/dev/null 2>&1 || die "kubectl is not installed"

case "${1:-}" in
    list)
        [[ $# -le 2 && ("${2:-}" == "" || "${2:-}" == --all) ]] || die "usage: dlq.sh list [--all]"
        ;;
    replay)
        for id in "${@:2}"; do
            [[ "$id" =~ ^[0-9]+$ ]] || die "replay takes dead-letter ids (numbers), not '$id'"
        done
        ;;
    *) die "usage: dlq.sh list [--all] | replay [ID ...]" ;;
esac

container='{.spec.template.spec.containers[0]'
image=$(kube get ksvc deadletter --output jsonpath="$container.image}") \
    || die "no Knative Service deadletter in namespace $NAMESPACE"
database_ref="$container.env[?(@.name==\"DATABASE_URL\")].valueFrom.secretKeyRef"
secret=$(kube get ksvc deadletter --output jsonpath="$database_ref.name}")
key=$(kube get ksvc deadletter --output jsonpath="$database_ref.key}")
[[ -n "$secret" && -n "$key" ]] || die "the deadletter Service takes DATABASE_URL from no Secret"
broker=$(kube get broker dueflow --output jsonpath='{.status.address.url}')
[[ -n "$broker" || "$1" == list ]] || die "the Broker dueflow has no address yet (not ready?)"

arguments=""
for argument in "$@"; do
    arguments+=", $(json_string "$argument")"
done

overrides=$(
    cat <<EOF
{
  "apiVersion": "v1",
  "metadata": {"labels": {"app.kubernetes.io/name": "dueflow-dlq"}},
  "spec": {
    "restartPolicy": "Never",
    "automountServiceAccountToken": false,
    "containers": [{
      "name": "dlq",
      "image": $(json_string "$image"),
      "command": ["python", "-m", "dueflow.dlq"${arguments}],
      "stdin": true,
      "env": [
        {"name": "DATABASE_URL",
         "valueFrom": {"secretKeyRef": {"name": $(json_string "$secret"), "key": $(json_string "$key")}}},
        {"name": "DUEFLOW_BROKER_URL", "value": $(json_string "$broker")}
      ],
      "securityContext": {
        "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001,
        "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
      }
    }]
  }
}
EOF
)

kube run "dueflow-dlq-$(date +%s)" --image "$image" --restart Never --rm --stdin --quiet \
    --overrides "$overrides"
