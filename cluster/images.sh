#!/usr/bin/env bash
# Builds the components and serving images and loads them into the kind cluster. Run it through `make images`
# (after `make cluster` created the cluster; `make cluster` also runs it itself unless BUILD_IMAGES=0).
set -euo pipefail

here="${BASH_SOURCE[0]}"
[[ $here == */* ]] || here="./$here"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "${here%/*}/common.sh"

usage() {
    cat <<'EOF_USAGE'
usage: cluster/images.sh        (normally: make images)

Builds images/components/Dockerfile and images/serving/Dockerfile from the repository root as
${IMAGE_REGISTRY}kfp-mlops-components:${IMAGE_TAG} and ${IMAGE_REGISTRY}kfp-mlops-serving:${IMAGE_TAG}, then loads
both into the kind cluster $CLUSTER_NAME (default kfp-mlops), which must exist: run make cluster first.
IMAGE_TAG defaults to <project version>-<short commit> and may never be `latest`. Uncommitted changes keep the
commit's tag: set IMAGE_TAG yourself to roll them out. IMAGE_BASE=<image> builds both on that base instead of the
official Python image (e.g. kfp-mlops-base:bookworm from make base-image).
EOF_USAGE
}

build() {
    local dockerfile=$1 image=$2
    shift 2
    log "building $image ($dockerfile)"
    docker build -f "$REPO_ROOT/$dockerfile" -t "$image" "$@" "$REPO_ROOT" ||
        die "docker build of $image failed" "read the build output above; both images build from the repository root"
}

# Docker's containerd image store (the default from Docker 29 on) can break `kind load docker-image` with
# "content digest ... not found" (kubernetes-sigs/kind#3795); saving only this machine's platform avoids it.
load_through_archive() {
    local platform workdir
    platform="$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}')"
    workdir="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: workdir is local to this function
    trap "rm -rf '$workdir'" EXIT
    docker image save --platform "$platform" -o "$workdir/images.tar" "$COMPONENTS_IMAGE" "$SERVING_IMAGE" ||
        die "docker image save failed" "load by hand: docker image save IMAGE -o images.tar && kind load image-archive images.tar --name $CLUSTER_NAME"
    kind load image-archive "$workdir/images.tar" --name "$CLUSTER_NAME" ||
        die "kind could not load the images" "kind get nodes --name $CLUSTER_NAME; docker ps"
}

main() {
    if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        usage
        return 0
    fi
    (($# == 0)) || die "unexpected argument(s): $*" "cluster/images.sh --help"
    resolve_images
    require docker kind
    require_docker_daemon
    cluster_exists ||
        die "there is no kind cluster named '$CLUSTER_NAME'" "make cluster (creates it, installs KFP and Seldon, then builds the images)"
    # The commit goes into the components image: every model registered from it names the code it came from.
    # IMAGE_BASE (e.g. from make base-image) replaces both Dockerfiles' default base image.
    local -a base=()
    [[ -z ${IMAGE_BASE:-} ]] || base=(--build-arg "BASE_IMAGE=$IMAGE_BASE")
    build images/components/Dockerfile "$COMPONENTS_IMAGE" "${base[@]}" \
        --build-arg GIT_SHA="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    build images/serving/Dockerfile "$SERVING_IMAGE" "${base[@]}"
    log "loading both images into kind cluster '$CLUSTER_NAME'"
    if ! kind load docker-image "$COMPONENTS_IMAGE" "$SERVING_IMAGE" --name "$CLUSTER_NAME"; then
        warn "kind load docker-image failed; retrying through an image archive of this platform only"
        load_through_archive
    fi
    log "images ready in '$CLUSTER_NAME': $COMPONENTS_IMAGE $SERVING_IMAGE"
}

main "$@"
