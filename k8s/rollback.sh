#!/bin/sh
# Roll an overlay's Deployment back, then move the registry's Production version to the
# model version the cluster runs, so cluster and registry agree. Two operations:
#
#   model    Roll the model back: the registry's `previous` version comes back, at the
#            newest Deployment revision that ran it (`rollout undo --to-revision`),
#            whatever releases of code came in between. Use it when the model is bad.
#   release  Undo the last release (`kubectl rollout undo`): the previous revision, code
#            and model together, comes back. Use it when the code or settings are bad.
#            After a release of new code with the same model, Production stays put.
#
# The cluster leads and the registry follows. The undo runs only while the cluster still
# runs the registry's Production version, so running again after a failure (e.g. the
# rollout did not finish in time) finishes the same rollback instead of undoing twice.
# Once both agree, a second run rolls back again, as a second `rollout undo` does.
#
# usage: k8s/rollback.sh model|release ENV
#   ENV  an overlay under k8s/overlays; its namespace is read by k8s/namespace.sh
# Needs kubectl for the cluster and python with requirements.txt for the registry
# (MLFLOW_TRACKING_URI and its credentials). MODEL_NAME, K8S_DEPLOYMENT, PYTHON,
# ROLLOUT_TIMEOUT and DEPLOY_STRATEGY (rolling or canary) override the defaults below.
set -eu

fail() {
    echo "rollback: $*" >&2
    exit "${2:-2}"
}

[ $# -eq 2 ] || fail "usage: $0 model|release ENV"
operation=$1
case $operation in
    model | release) ;;
    *) fail "unknown operation '$operation' (model or release)" ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
namespace=$(sh "$here/namespace.sh" "$2")
model_name=${MODEL_NAME:-credit-risk-scoring}
name=${K8S_DEPLOYMENT:-credit-risk-serving}
python=${PYTHON:-python}
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
# The registry commands run from the project root, where their package is.
cd "$here/.."

deployed_version() {
    kubectl get "deployment/$name" --namespace "$namespace" \
        --output 'jsonpath={.spec.template.metadata.labels.model-version}'
}

# The version a registry alias names; the command's JSON line goes to stderr with its logs.
alias_version() {
    "$python" -m registry_scripts.resolve --uri "models:/$model_name@$1" \
        --dotenv "$workdir/$1.env" --dotenv-var VERSION >&2
    sed -n 's/^VERSION=//p' "$workdir/$1.env"
}

# The newest revision whose pod template runs model version $1, from the Deployment's
# ReplicaSets (each keeps its revision number and pod template; the last 10 are kept).
# A failing kubectl stops the script here rather than reading as "no such revision".
newest_revision_of() {
    kubectl get replicasets --namespace "$namespace" \
        --selector "app.kubernetes.io/name=$name" \
        --output 'jsonpath={range .items[*]}{.metadata.annotations.deployment\.kubernetes\.io/revision} {.spec.template.metadata.labels.model-version}{"\n"}{end}' \
        >"$workdir/revisions"
    sort -n "$workdir/revisions" |
        awk -v version="$1" '$2 == version { revision = $1 } END { print revision }'
}

deployed=$(deployed_version)
production=$(alias_version production)
if [ "$deployed" = "$production" ]; then
    if [ "$operation" = release ]; then
        kubectl rollout undo "deployment/$name" --namespace "$namespace"
    else
        previous=$(alias_version previous)
        revision=$(newest_revision_of "$previous")
        [ -n "$revision" ] || fail "no revision of deployment/$name in $namespace runs model \
version $previous (only the last 10 are kept): deploy it with k8s/pin-release.sh instead" 1
        kubectl rollout undo "deployment/$name" --namespace "$namespace" --to-revision="$revision"
    fi
else
    echo "rollback: $namespace runs model version $deployed, the registry's Production is" \
        "$production: finishing an earlier rollback without undoing again" >&2
fi
kubectl rollout status "deployment/$name" --namespace "$namespace" \
    --timeout="${ROLLOUT_TIMEOUT:-600s}"
# Under the canary option (docs/canary.md) the Rollout follows the Deployment's
# template: wait until it runs it (within the rollback window it skips steps and analysis).
if [ "${DEPLOY_STRATEGY:-rolling}" = canary ]; then
    sh "$here/wait-rollout.sh" "$namespace" "$name" 900
fi
"$python" -m registry_scripts.rollback --name "$model_name" --to-version "$(deployed_version)"
