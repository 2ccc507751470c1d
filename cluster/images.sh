#!/usr/bin/env bash
# Builds the components and serving images and, when the kind cluster exists, loads them into it. Run it through
# `make images` (needs Docker only); `make cluster` runs it itself once the cluster exists, unless BUILD_IMAGES=0.
set -euo pipefail

here="${BASH_SOURCE[0]}"
[[ $here == */* ]] || here="./$here"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "${here%/*}/common.sh"

usage() {
    cat <<'EOF_USAGE'
usage: cluster/images.sh        (normally: make images)

Builds images/components/Dockerfile and images/serving/Dockerfile from the repository root as
${IMAGE_REGISTRY}kfp-mlops-components:${IMAGE_TAG} and ${IMAGE_REGISTRY}kfp-mlops-serving:${IMAGE_TAG}. Needs
Docker only. If kind is installed and the kind cluster $CLUSTER_NAME (default kfp-mlops) exists, it then loads
both into it; otherwise it says so and stops there (make cluster creates the cluster and loads them).
IMAGE_TAG defaults to <project version>-<short commit> and may never be `latest`. Uncommitted changes keep the
commit's tag: set IMAGE_TAG yourself to roll them out. IMAGE_BASE=<image> builds both on that base instead of the
official Python image (e.g. kfp-mlops-base:bookworm from make base-image). The builds download from PyPI and
install Debian's binutils for a moment (to strip the libraries), so PyPI and the base's apt sources must be
reachable. They use Docker's default network, or the host's where the daemon has no bridge network;
IMAGE_BUILD_NETWORK=<mode> (e.g. host) sets it.
EOF_USAGE
}

# Builds run on Docker's default network; a daemon without its bridge network (dockerd --bridge=none, as on this
# project's CI machines) gives them none, so they use the host's. IMAGE_BUILD_NETWORK=<mode> chooses either way.
build_network() {
    if [[ -n ${IMAGE_BUILD_NETWORK:-} ]]; then
        printf '%s\n' "$IMAGE_BUILD_NETWORK"
    elif ! docker network inspect bridge >/dev/null 2>&1; then
        echo host
    fi
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
    require docker
    require_docker_daemon
    # The commit goes into the components image: every model registered from it names the code it came from.
    # IMAGE_BASE (e.g. from make base-image) replaces both Dockerfiles' default base image.
    local network
    local -a options=()
    [[ -z ${IMAGE_BASE:-} ]] || options=(--build-arg "BASE_IMAGE=$IMAGE_BASE")
    network="$(build_network)"
    if [[ -n $network ]]; then
        log "building on the '$network' network"
        options+=(--network "$network")
    fi
    build images/components/Dockerfile "$COMPONENTS_IMAGE" "${options[@]}" \
        --build-arg GIT_SHA="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    build images/serving/Dockerfile "$SERVING_IMAGE" "${options[@]}"
    # Loading needs the cluster; building does not, so a missing one ends the run here, successfully.
    local not_loaded=""
    if ! command -v kind >/dev/null 2>&1; then
        not_loaded="kind is not installed"
    elif ! cluster_exists; then
        not_loaded="there is no kind cluster named '$CLUSTER_NAME'"
    fi
    if [[ -n $not_loaded ]]; then
        log "built $COMPONENTS_IMAGE and $SERVING_IMAGE; not loaded into a cluster: $not_loaded" \
            "(make cluster creates it and loads them)"
        return 0
    fi
    log "loading both images into kind cluster '$CLUSTER_NAME'"
    if ! kind load docker-image "$COMPONENTS_IMAGE" "$SERVING_IMAGE" --name "$CLUSTER_NAME"; then
        warn "kind load docker-image failed; retrying through an image archive of this platform only"
        load_through_archive
    fi
    log "images ready in '$CLUSTER_NAME': $COMPONENTS_IMAGE $SERVING_IMAGE"
}

main "$@"
