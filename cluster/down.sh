#!/usr/bin/env bash
# Deletes the kind cluster `make cluster` created, with everything in it (runs, registry, models). `make cluster-down`.
set -euo pipefail

here="${BASH_SOURCE[0]}"
[[ $here == */* ]] || here="./$here"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "${here%/*}/common.sh"

main() {
    (($# == 0)) || die "usage: cluster/down.sh (deletes the kind cluster \$CLUSTER_NAME, default kfp-mlops)"
    require kind
    log "deleting kind cluster '$CLUSTER_NAME'"
    # kind deletes nothing, successfully, when the cluster does not exist: safe to re-run.
    kind delete cluster --name "$CLUSTER_NAME"
}

main "$@"
