#!/usr/bin/env bash
# Builds a Debian base image for both Dockerfiles from Debian packages alone (debootstrap + docker import), for
# machines that reach a Debian mirror but no image registry (air-gapped builds, internal mirrors). Run it through
# `make base-image`, then build with it: `make images IMAGE_BASE=kfp-mlops-base:bookworm`.
set -euo pipefail

here="${BASH_SOURCE[0]}"
[[ $here == */* ]] || here="./$here"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "${here%/*}/common.sh"

BASE_IMAGE_TAG="${BASE_IMAGE_TAG:-kfp-mlops-base:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-}"

usage() {
    cat <<'EOF_USAGE'
usage: cluster/base-image.sh        (normally: make base-image)

Builds $BASE_IMAGE_TAG (default kfp-mlops-base:bookworm): Debian $DEBIAN_SUITE (default bookworm, whose python3
is 3.11, as the official python:3.11 images) from $DEBIAN_MIRROR with debootstrap, with python3 in a venv at
/usr/local (so `python` and `pip` are on PATH, as in the official images), imported with `docker import`.
Documentation, man and info pages and translations are left out (each package's copyright file stays), also
from any package apt installs in an image built on it. CA_BUNDLE=<file> replaces the image's CA certificates with
that file: for a mirror or proxy signed by your own certificate authority (pip in the image builds must trust it).
Needs root (debootstrap), debootstrap and docker.
EOF_USAGE
}

# What no container reads: docs (46 MB with man, info and translations; the copyright files stay, for the
# licences), written as a dpkg configuration so packages apt installs in later image builds stay slim too.
DPKG_EXCLUDES='path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*'

# And apt keeps no downloaded packages, package caches (78 MB after an update) or translations, as in Debian's
# official images: an image build that installs a package leaves only the package.
APT_SLIM='APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";'

# slim ROOTFS: writes DPKG_EXCLUDES and APT_SLIM into the image and removes what debootstrap installed under the
# excluded paths.
slim() {
    local rootfs=$1 dir
    printf '%s\n' "$DPKG_EXCLUDES" >"$rootfs/etc/dpkg/dpkg.cfg.d/01-kfp-mlops-slim"
    printf '%s\n' "$APT_SLIM" >"$rootfs/etc/apt/apt.conf.d/01-kfp-mlops-slim"
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    # Files only: the man1...man8 directories stay, as update-alternatives links man pages into them.
    for dir in man info locale lintian; do
        [[ ! -d $rootfs/usr/share/$dir ]] || find "$rootfs/usr/share/$dir" -mindepth 1 ! -type d -delete
    done
    # Logs and debconf's backups of the bootstrap itself.
    rm -f "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
}

main() {
    if [[ ${1:-} == -h || ${1:-} == --help ]]; then
        usage
        return 0
    fi
    (($# == 0)) || die "unexpected argument(s): $*" "cluster/base-image.sh --help"
    require debootstrap docker
    require_docker_daemon
    ((EUID == 0)) || die "debootstrap needs root" "sudo make base-image (or run as root)"
    [[ -z $CA_BUNDLE || -f $CA_BUNDLE ]] || die "CA_BUNDLE=$CA_BUNDLE is not a file" "point it at a PEM bundle"

    local rootfs
    rootfs="$(mktemp -d)"
    # shellcheck disable=SC2064  # expand now: rootfs is local to main
    trap "rm -rf '$rootfs'" EXIT
    log "debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 ||
        die "debootstrap failed (log: $rootfs.log)" "check that $DEBIAN_MIRROR is reachable and serves $DEBIAN_SUITE"
    if [[ -n $CA_BUNDLE ]]; then
        cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    fi
    # A venv at /usr/local: pip installs there without touching Debian's Python (PEP 668 forbids that).
    chroot "$rootfs" python3 -m venv /usr/local
    # pip stays for the image builds, without its bytecode (7 MB: it runs at build time only); setuptools (8 MB)
    # goes: no installed package imports it at run time, and pip builds the project with a setuptools of its own.
    chroot "$rootfs" /usr/local/bin/pip uninstall --quiet --yes --root-user-action=ignore setuptools
    find "$rootfs"/usr/local/lib/python3*/site-packages/pip -name __pycache__ -prune -exec rm -rf {} +
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    slim "$rootfs"
    log "importing $BASE_IMAGE_TAG"
    tar -C "$rootfs" -c . | docker import \
        -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'ENV LANG=C.UTF-8' \
        -c 'CMD ["python3"]' \
        - "$BASE_IMAGE_TAG" >/dev/null
    rm -f "$rootfs.log"
    log "$BASE_IMAGE_TAG: $(docker run --rm "$BASE_IMAGE_TAG" python --version), $(docker image inspect --format '{{.Size}}' "$BASE_IMAGE_TAG" | awk '{printf "%d MB", $1 / 1e6}')"
}

# Sourced, it only defines the functions: the tests run slim on a scratch directory.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
