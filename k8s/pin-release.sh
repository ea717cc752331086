#!/bin/sh
# Pin the model version and image that one overlay deploys, by rewriting
# k8s/overlays/ENV/release.yaml. The pin lives in the pod template, so each model version
# is its own Deployment revision and `kubectl rollout undo` brings the previous one back.
#
# usage: k8s/pin-release.sh ENV MODEL_VERSION IMAGE [--baked]
#   ENV            an overlay under k8s/overlays (staging, production)
#   MODEL_VERSION  a registry version number of credit-risk-scoring, never a stage or alias
#   IMAGE          the image with its tag (or digest), e.g. REGISTRY/credit-risk-serving:SHA-model-7
#   --baked        IMAGE was built with --target baked: serve /opt/model from the image and
#                  never contact the registry
set -eu

model_name=credit-risk-scoring

fail() {
    echo "pin-release: $*" >&2
    exit 2
}

[ $# -eq 3 ] || [ $# -eq 4 ] || fail "usage: $0 ENV MODEL_VERSION IMAGE [--baked]"
overlay=$(dirname "$0")/overlays/$1
version=$2
image=$3
baked=${4:-}

[ -f "$overlay/kustomization.yaml" ] || fail "no overlay at $overlay"
case $version in
    '' | 0* | *[!0-9]*) fail "MODEL_VERSION must be a version number, not '$version'" ;;
esac
# Only characters of image references, so the value cannot break the YAML below.
case $image in
    '' | *[!A-Za-z0-9._/:@-]*) fail "not an image reference: '$image'" ;;
esac
case ${image##*/} in
    *:* | *@*) ;;
    *) fail "IMAGE needs an explicit tag or digest: '$image'" ;;
esac
case $baked in
    '') served_uri=models:/$model_name/$version ;;
    --baked) served_uri=/opt/model ;;
    *) fail "unknown option '$baked'" ;;
esac

cat >"$overlay/release.yaml" <<YAML
# Written by k8s/pin-release.sh: edit with it, not by hand.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: credit-risk-serving
  annotations:
    kubernetes.io/change-cause: "model $model_name version $version, image $image"
spec:
  template:
    metadata:
      labels:
        model-version: "$version"
      annotations:
        model-uri: models:/$model_name/$version
    spec:
      containers:
        - name: server
          image: $image
          env:
            - name: MODEL_URI
              value: $served_uri
YAML
echo "pinned $overlay to $model_name version $version, image $image"
