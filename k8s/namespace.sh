#!/bin/sh
# Print the namespace an overlay deploys into, read from its kustomization.yaml: the one
# place the pipeline and k8s/rollback.sh take it from, so it always follows the overlay.
#
# usage: k8s/namespace.sh ENV
set -eu

fail() {
    echo "namespace: $*" >&2
    exit 2
}

[ $# -eq 1 ] || fail "usage: $0 ENV"
case $1 in
    '' | */* | .*) fail "not an overlay name: '$1'" ;;
esac
kustomization=$(dirname "$0")/overlays/$1/kustomization.yaml
[ -f "$kustomization" ] || fail "no overlay at $(dirname "$kustomization")"
namespace=$(sed -n 's/^namespace: *//p' "$kustomization")
[ -n "$namespace" ] || fail "$kustomization sets no namespace"
echo "$namespace"
