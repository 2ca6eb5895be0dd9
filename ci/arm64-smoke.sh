#!/usr/bin/env bash
# CI: prove the arm64 image under emulation (issue 6, part 4).
#
# qemu-user-static through binfmt_misc runs arm64 binaries on this machine. An arm64 Debian
# base is made with debootstrap (first stage here, second stage inside it under qemu) and
# imported as linux/arm64; the same Dockerfile is built for linux/arm64 from it; then, in
# the arm64 container: `controlplane --help`, and a tiny project added, deployed and
# RUNNING under supervisord.
#
# Skips (exit 0, reason printed) where no engine or no emulation can be had; fails otherwise.
# CP_BASE_CACHE=DIR keeps the debootstrapped base between runs (development only).
set -euo pipefail
CP_STEP=${CP_ARCH:-arm64}-smoke
# shellcheck source=ci/docker-lib.sh
. "$(dirname "$0")/docker-lib.sh"
cd "$CP_REPO"

ARCH=${CP_ARCH:-arm64} # the Debian name; armhf works the same way (slower: it compiles)
case $ARCH in
    arm64) PLATFORM=linux/arm64 UNAME=aarch64 ;;
    armhf) PLATFORM=linux/arm/v7 UNAME=armv7l ;;
    *) cp_fail "CP_ARCH=$ARCH: use arm64 or armhf" ;;
esac
IMAGE=controlplane:ci-$ARCH
BASE=localhost/debian-$ARCH:$(cp_debian_suite)-slim
NAME=cp-$ARCH-$$

cp_require_root
cp_mktemp
trap cp_teardown EXIT
cp_apt_install dockerd:docker.io debootstrap:debootstrap git:git
cp_enable_emulation "$ARCH"
cp_start_dockerd

DATA=$CP_TMP/data
GIT=$CP_TMP/git
mkdir -p "$DATA" "$GIT"
CP_DUMP_DIRS+=("$DATA")
dx() { docker exec "$NAME" "$@"; }

smoke() {
    cp_make_repo "$GIT"
    CP_CONTAINERS+=("$NAME")
    docker run -d --name "$NAME" --platform "$PLATFORM" --network host \
        --health-interval 3s --health-timeout 30s --health-retries 5 \
        -v "$DATA:/data" -v "$GIT:/git:ro" -e CONTROLPLANE_ALLOW_FILE_URLS=1 "$IMAGE" >/dev/null
    cp_wait_healthy "$NAME" 300
    local machine
    machine=$(dx uname -m)
    [ "$machine" = "$UNAME" ] || cp_fail "the container runs on $machine, not $UNAME"
    dx controlplane --help >/dev/null
    dx controlplane status
    dx controlplane project add demo --repo /git/demo.git --path /srv/demo
    dx controlplane project set demo health-window 10s
    timeout 900 docker exec "$NAME" controlplane deploy demo
    cp_check_running "$NAME" demo-prod
    dx controlplane history demo | grep -Eq '^#1 .*live prod' || cp_fail "history does not show #1 live prod"
    cp_wait_for 60 "demo's output" grep -q "demo: hello from 10001" "$DATA/logs/demo-prod.out.log" ||
        cp_fail "demo-prod did not print its greeting as uid 10001"
    docker stop -t 60 "$NAME" >/dev/null
    [ "$(docker inspect -f '{{.State.ExitCode}}' "$NAME")" = 0 ] || cp_fail "supervisord did not exit 0 on SIGTERM"
}

cp_timed "debootstrap $ARCH" cp_make_base "$ARCH" "$BASE"
cp_timed "build $ARCH" cp_build "$IMAGE" --platform "$PLATFORM" --build-arg "BASE=$BASE"
cp_timed "smoke $ARCH" smoke
cp_log "PASSED: the $PLATFORM image installs, runs controlplane and deploys a project under emulation"
