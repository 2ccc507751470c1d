#!/usr/bin/env bash
# Helpers shared by cluster/up.sh, cluster/images.sh and cluster/down.sh; sourced, never run on its own.
# Only bash builtins are used until a prerequisite has been checked, so a missing tool is always reported by name.
set -euo pipefail

# Where the scripts live, without dirname (BASH_SOURCE is this file's path as the caller sourced it).
_common_path="${BASH_SOURCE[0]}"
[[ $_common_path == */* ]] || _common_path="./$_common_path"
CLUSTER_DIR="$(cd "${_common_path%/*}" && pwd)"
REPO_ROOT="${CLUSTER_DIR%/*}"
unset _common_path

CLUSTER_NAME="${CLUSTER_NAME:-kfp-mlops}"
# kind names the kubeconfig context kind-<cluster>. Every kubectl and helm call names it explicitly, so the scripts
# never act on whatever cluster the current context happens to point at.
KUBE_CONTEXT="kind-${CLUSTER_NAME}"

log() {
    printf '==> %s\n' "$*"
}

warn() {
    printf 'WARNING: %s\n' "$*" >&2
}

# die MESSAGE [HINT...]: print the error and what to look at next, then exit 1.
die() {
    printf 'ERROR: %s\n' "$1" >&2
    shift
    if (($#)); then
        printf '  next: %s\n' "$@" >&2
    fi
    exit 1
}

kctl() {
    kubectl --context "$KUBE_CONTEXT" "$@"
}

install_hint() {
    case $1 in
        docker) echo "Docker Engine (Linux) or Docker Desktop: https://docs.docker.com/engine/install/" ;;
        kind) echo "kind v0.29.0 (the release the node image was built for): https://kind.sigs.k8s.io/docs/user/quick-start/#installation, e.g. go install sigs.k8s.io/kind@v0.29.0" ;;
        kubectl) echo "kubectl 1.32-1.34 (within one minor of the cluster's 1.33): https://kubernetes.io/docs/tasks/tools/" ;;
        helm) echo "Helm 3 (3.8 or later for SERVING=kserve, whose charts are OCI): https://helm.sh/docs/intro/install/" ;;
        git) echo "git (kubectl apply -k fetches KFP's manifests with it; the image tag uses the commit): your package manager" ;;
        debootstrap) echo "Debian's debootstrap (make base-image): apt-get install debootstrap" ;;
        *) echo "see your package manager" ;;
    esac
}

# require TOOL...: fail naming every missing tool and how to install it.
require() {
    local tool
    local -a missing=() hints=()
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            missing+=("$tool")
            hints+=("install $tool: $(install_hint "$tool")")
        fi
    done
    if ((${#missing[@]})); then
        die "missing prerequisite(s): ${missing[*]}" "${hints[@]}"
    fi
}

require_docker_daemon() {
    if ! docker info >/dev/null 2>&1; then
        die "the Docker daemon is not reachable (\`docker info\` failed)" \
            "start Docker (sudo systemctl start docker, or open Docker Desktop)" \
            "check that your user may use it: docker info (on Linux: add yourself to the docker group)"
    fi
}

cluster_exists() {
    local name
    while IFS= read -r name; do
        [[ $name == "$CLUSTER_NAME" ]] && return 0
    done < <(kind get clusters 2>/dev/null)
    return 1
}

# Prints `version` of pyproject.toml's [project] table, with bash alone (no Python needed to build the images).
project_version() {
    local line table=""
    while IFS= read -r line || [[ -n $line ]]; do
        if [[ $line =~ ^\[([^]]*)\] ]]; then
            table="${BASH_REMATCH[1]}"
        elif [[ $table == project && $line =~ ^version[[:space:]]*=[[:space:]]*\"([^\"]+)\" ]]; then
            printf '%s\n' "${BASH_REMATCH[1]}"
            return 0
        fi
    done <"$REPO_ROOT/pyproject.toml"
    return 1
}

# Sets IMAGE_TAG (default <project version>-<short commit>, as the Makefile computes it), IMAGE_REGISTRY (empty or
# ending in /), COMPONENTS_IMAGE and SERVING_IMAGE, and exports them for the scripts this one calls.
resolve_images() {
    if [[ -z ${IMAGE_TAG:-} ]]; then
        require git
        local version commit
        version="$(project_version)" ||
            die "could not read the project version from $REPO_ROOT/pyproject.toml" "set IMAGE_TAG=<tag>"
        commit="$(git -C "$REPO_ROOT" rev-parse --short HEAD)" ||
            die "could not read the current git commit" "set IMAGE_TAG=<tag>"
        IMAGE_TAG="${version}-${commit}"
    fi
    # `latest` makes Kubernetes pull Always, and an image that only exists inside kind cannot be pulled.
    if [[ $IMAGE_TAG == latest ]]; then
        die "IMAGE_TAG must not be 'latest' (Kubernetes would always pull it, and images loaded into kind cannot be pulled)" \
            "use the default (<version>-<commit>) or any other tag"
    fi
    if [[ ! $IMAGE_TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ || $IMAGE_TAG == *- ]]; then
        die "IMAGE_TAG '$IMAGE_TAG' is not a usable Docker tag (did git rev-parse fail?)" "set IMAGE_TAG=<tag>"
    fi
    IMAGE_REGISTRY="${IMAGE_REGISTRY:-}"
    if [[ -n $IMAGE_REGISTRY && $IMAGE_REGISTRY != */ ]]; then
        IMAGE_REGISTRY+=/
    fi
    # shellcheck disable=SC2034  # used by the scripts that source this file
    COMPONENTS_IMAGE="${IMAGE_REGISTRY}kfp-mlops-components:${IMAGE_TAG}"
    # shellcheck disable=SC2034  # used by the scripts that source this file
    SERVING_IMAGE="${IMAGE_REGISTRY}kfp-mlops-serving:${IMAGE_TAG}"
    export CLUSTER_NAME IMAGE_TAG IMAGE_REGISTRY
}
