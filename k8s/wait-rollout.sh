#!/bin/sh
# Wait for Argo Rollouts to finish rolling out the Deployment's current pod template, for the
# canary option (k8s/components/canary). Exits 0 once the Rollout is Healthy with that
# template as its stable ReplicaSet; 1 once that template's rollout is aborted (Degraded:
# an analysis failed, or the progress deadline passed) or after the timeout.
# It does what `kubectl argo rollouts status` does, with kubectl alone: the plugin is a
# binary from GitHub releases, which the deploy job's image does not have.
#
# usage: k8s/wait-rollout.sh NAMESPACE NAME [TIMEOUT_SECONDS]
#   NAME  of the Rollout and of the Deployment it reads its pod template from (workloadRef)
set -eu

fail() {
    echo "wait-rollout: $*" >&2
    exit 1
}

[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 NAMESPACE NAME [TIMEOUT_SECONDS]" >&2; exit 2; }
namespace=$1
name=$2
timeout=${3:-1800}
interval=${WAIT_INTERVAL_SECONDS:-10}
deadline=$(($(date +%s) + timeout))

# A template is known by its image and model version: a new commit changes the first, a new
# model the second, and a rollback brings both back.
template='{.spec.template.spec.containers[0].image} {.spec.template.metadata.labels.model-version}'
target=$(kubectl get deployment "$name" --namespace "$namespace" --output "jsonpath=$template")
echo "waiting for rollout/$name in $namespace to promote $target"

while :; do
    status=$(kubectl get rollout "$name" --namespace "$namespace" \
        --output 'jsonpath={.status.phase} {.status.currentPodHash} {.status.stableRS}')
    read -r phase current stable <<EOS
$status
EOS
    # Until the controller has seen the new template, the status describes the previous one.
    running=$(kubectl get replicaset "$name-$current" --namespace "$namespace" \
        --output "jsonpath=$template" 2>/dev/null || true)
    if [ "$running" = "$target" ]; then
        case $phase in
            Degraded)
                message=$(kubectl get rollout "$name" --namespace "$namespace" \
                    --output 'jsonpath={.status.message}')
                fail "rollout of $target aborted: $message"
                ;;
            Healthy)
                if [ "$current" = "$stable" ]; then
                    echo "rollout/$name promoted $target"
                    exit 0
                fi
                ;;
        esac
        echo "rollout/$name: $phase"
    else
        echo "rollout/$name: the controller has not started on $target yet"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "rollout of $target not finished within ${timeout} s"
    sleep "$interval"
done
