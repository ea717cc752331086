#!/bin/sh
# Pin the candidate model version an overlay's pods score as their shadow, by rewriting
# k8s/overlays/ENV-shadow/shadow.yaml. The served model stays what k8s/pin-release.sh pinned
# on ENV (the ENV-shadow overlay builds on ENV); see docs/shadow.md.
#
# usage: k8s/pin-shadow.sh ENV MODEL_VERSION
#   ENV            an overlay under k8s/overlays that has an ENV-shadow beside it
#   MODEL_VERSION  a registry version number of credit-risk-scoring, never a stage or alias
set -eu

model_name=credit-risk-scoring

fail() {
    echo "pin-shadow: $*" >&2
    exit 2
}

[ $# -eq 2 ] || fail "usage: $0 ENV MODEL_VERSION"
case $1 in
    '' | */* | .*) fail "not an overlay name: '$1'" ;;
esac
overlay=$(dirname "$0")/overlays/$1-shadow
version=$2
[ -f "$overlay/kustomization.yaml" ] || fail "no shadow overlay at $overlay"
case $version in
    '' | 0* | *[!0-9]*) fail "MODEL_VERSION must be a version number, not '$version'" ;;
esac

cat >"$overlay/shadow.yaml" <<YAML
# Written by k8s/pin-shadow.sh: edit with it, not by hand.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: credit-risk-serving
spec:
  template:
    metadata:
      annotations:
        shadow-model-uri: models:/$model_name/$version
    spec:
      containers:
        - name: server
          env:
            - name: SHADOW_MODEL_URI
              value: models:/$model_name/$version
YAML
echo "pinned the shadow of $overlay to $model_name version $version"
