# shellcheck shell=bash
# Shared by ci/docker-e2e.sh and ci/arm64-smoke.sh (sourced, not run).
#
# A private Docker engine for one CI step: its own data and exec roots under a temp dir, no
# bridge, no NAT rules, no IP forwarding (containers use --network host or none), and a
# Debian base made locally with debootstrap and loaded as an image, since nothing can be pulled.
# Everything is torn down by cp_teardown (call it from an EXIT trap).
#
# Skipping: cp_skip prints the reason and exits 0, for what the machine cannot provide (no
# apt-get, no engine, no emulation). Once the engine runs, any failure exits non-zero.

CP_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CP_STEP=${CP_STEP:-docker}
CP_T0=$SECONDS
CP_TMP=""
CP_DOCKERD_PID=""
CP_CONTAINERS=()
CP_PIDS=()
CP_DUMP_DIRS=()
CP_ON_EXIT=() # commands (strings) run at teardown, after the engine is gone

cp_log() { printf '[%s %s +%ss] %s\n' "$CP_STEP" "$(date +%H:%M:%S)" "$((SECONDS - CP_T0))" "$*"; }
cp_skip() {
    echo "SKIPPED ($CP_STEP): $*"
    exit 0
}
cp_fail() {
    echo "FAILED ($CP_STEP): $*" >&2
    exit 1
}

# cp_timed LABEL CMD...: run CMD, then print how long it took (kept for the summary).
CP_TIMINGS=()
# A failure inside CMD ends the script (set -e), and the timings so far are still printed.
cp_timed() {
    local label=$1 t0=$SECONDS
    shift
    "$@"
    CP_TIMINGS+=("$label: $((SECONDS - t0))s")
    cp_log "TIMING $label: $((SECONDS - t0))s"
}
cp_summary() {
    local t
    echo "---- $CP_STEP timings ----"
    for t in "${CP_TIMINGS[@]}"; do echo "  $t"; done
    echo "  total: $((SECONDS - CP_T0))s"
}

# cp_require_root: the engine, debootstrap and mounts need root.
cp_require_root() {
    [ "$(id -u)" = 0 ] || cp_skip "needs root (to install and run a Docker engine), running as $(id -un)"
}

# cp_apt_install CMD:PACKAGE...: install the packages whose command is missing.
cp_apt_install() {
    local need=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || cp_skip "apt-get not found, cannot install ${need[*]}"
    cp_log "installing ${need[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${need[@]}"; } >"${CP_TMP:-/tmp}/apt-install.log" 2>&1; then
        tail -n 20 "${CP_TMP:-/tmp}/apt-install.log"
        cp_skip "apt-get install ${need[*]} failed (see above)"
    fi
}

# cp_mktemp: the step's temp dir (everything it makes lives here).
cp_mktemp() {
    CP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cp-$CP_STEP.XXXXXX")
    chmod 755 "$CP_TMP"
}

# cp_start_dockerd: a private engine on $CP_TMP/docker.sock; skip if it cannot start.
cp_start_dockerd() {
    command -v dockerd >/dev/null 2>&1 || cp_skip "dockerd not found after installing docker.io"
    command -v docker >/dev/null 2>&1 || cp_skip "docker client not found"
    mkdir -p "$CP_TMP/docker-data" "$CP_TMP/docker-exec"
    # Never a bridge, NAT rules or forwarding: the host's network is left as it is.
    dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
        --data-root "$CP_TMP/docker-data" --exec-root "$CP_TMP/docker-exec" \
        --pidfile "$CP_TMP/dockerd.pid" -H "unix://$CP_TMP/docker.sock" \
        >"$CP_TMP/dockerd.log" 2>&1 &
    CP_DOCKERD_PID=$!
    export DOCKER_HOST="unix://$CP_TMP/docker.sock"
    local i
    for i in $(seq 1 60); do
        if docker version >/dev/null 2>&1; then
            cp_log "dockerd $(docker version -f '{{.Server.Version}}') up (pid $CP_DOCKERD_PID," \
                "storage $(docker info -f '{{.Driver}}'))"
            return 0
        fi
        if ! kill -0 "$CP_DOCKERD_PID" 2>/dev/null; then
            tail -n 20 "$CP_TMP/dockerd.log"
            CP_DOCKERD_PID=""
            cp_skip "dockerd exited at start (see its log above)"
        fi
        sleep 1
    done
    tail -n 20 "$CP_TMP/dockerd.log"
    cp_skip "dockerd did not answer within 60 s"
}

# cp_teardown: containers, engine, mounts, temp dir. Safe to call twice.
cp_teardown() {
    local rc=$? c i
    set +e
    if [ "$rc" != 0 ]; then cp_dump; fi
    for c in "${CP_PIDS[@]}"; do kill "$c" 2>/dev/null; wait "$c" 2>/dev/null; done
    CP_PIDS=()
    if [ -n "$CP_DOCKERD_PID" ]; then
        for c in "${CP_CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
        kill "$CP_DOCKERD_PID" 2>/dev/null
        for i in $(seq 1 30); do kill -0 "$CP_DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        kill -9 "$CP_DOCKERD_PID" 2>/dev/null
        wait "$CP_DOCKERD_PID" 2>/dev/null
        CP_DOCKERD_PID=""
    fi
    for c in "${CP_ON_EXIT[@]}"; do eval "$c"; done
    CP_ON_EXIT=()
    if [ -n "$CP_TMP" ] && [ -d "$CP_TMP" ]; then
        # anything the engine left mounted under our roots (overlays, netns, shm), deepest first
        awk -v root="$CP_TMP" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null; done
        rm -rf "$CP_TMP"
        CP_TMP=""
    fi
    cp_summary
    return "$rc"
}

# cp_dump: after a failure, what a person needs to see: container output and the logs of
# every data dir in CP_DUMP_DIRS.
cp_dump() {
    local c d f
    for c in "${CP_CONTAINERS[@]}"; do
        echo "---- docker logs $c (last 40 lines) ----"
        docker logs --tail 40 "$c" 2>&1
        docker inspect -f 'state: {{.State.Status}} exit={{.State.ExitCode}} health={{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>&1
    done
    for d in "${CP_DUMP_DIRS[@]}"; do
        for f in "$d"/logs/*.log "$d"/logs/builds/*.log; do
            [ -f "$f" ] || continue
            echo "---- ${f#"$d"/} (last 30 lines) ----"
            tail -n 30 "$f"
        done
    done
}

# cp_debian_suite: the Debian release of the Dockerfile's default base (debian:SUITE-slim).
cp_debian_suite() {
    sed -n 's/^ARG BASE=debian:\([a-z]*\)-slim$/\1/p' "$CP_REPO/Dockerfile"
}

# cp_debian_mirror: the Debian mirror apt uses on this machine (CP_DEBIAN_MIRROR overrides).
cp_debian_mirror() {
    if [ -n "${CP_DEBIAN_MIRROR:-}" ]; then
        echo "$CP_DEBIAN_MIRROR"
        return
    fi
    local found
    # one-line "deb URI suite" and deb822 "URIs:" entries; the first plain Debian archive wins
    found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^deb /{print $2} /^URIs:/{for (i = 2; i <= NF; i++) print $i}' |
        grep -E '/debian/?$' | head -n 1)
    echo "${found:-http://deb.debian.org/debian}"
}

# cp_debootstrap ARCH SUITE ROOTFS MIRROR: a minbase; a foreign ARCH in two stages, the
# second one running ARCH's own binaries under qemu.
cp_debootstrap() {
    local arch=$1 suite=$2 rootfs=$3 mirror=$4 log="$CP_TMP/debootstrap-$1.log"
    if [ "$arch" = "$(dpkg --print-architecture)" ]; then
        debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$log" 2>&1
    else
        debootstrap --variant=minbase --arch="$arch" --foreign "$suite" "$rootfs" "$mirror" >"$log" 2>&1 &&
            chroot "$rootfs" /debootstrap/debootstrap --second-stage >>"$log" 2>&1
    fi
}

# cp_make_base ARCH TAG: debootstrap a minbase of the suite for ARCH and load it as TAG.
# CP_BASE_CACHE (a folder, optional) keeps the rootfs tarball between runs on a dev machine.
cp_make_base() {
    local arch=$1 tag=$2 suite mirror rootfs tarball
    suite=$(cp_debian_suite)
    [ -n "$suite" ] || cp_fail "cannot read the Debian release from the Dockerfile's ARG BASE"
    mirror=$(cp_debian_mirror)
    tarball="${CP_BASE_CACHE:-$CP_TMP}/rootfs-$suite-$arch.tar"
    if [ ! -s "$tarball" ]; then
        rootfs="$CP_TMP/rootfs-$arch"
        cp_log "debootstrap $suite ($arch, minbase) from $mirror"
        # a second try for a mirror's hiccup; a second failure is a failure
        cp_debootstrap "$arch" "$suite" "$rootfs" "$mirror" || {
            cp_log "debootstrap $arch failed; trying once more"
            rm -rf "$rootfs"
            cp_debootstrap "$arch" "$suite" "$rootfs" "$mirror"
        } || { tail -n 30 "$CP_TMP/debootstrap-$arch.log"; cp_fail "debootstrap $arch failed"; }
        # Like the official image: the updates suite too, and no package lists or caches.
        echo "deb $mirror $suite-updates main" >>"$rootfs/etc/apt/sources.list"
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
        # This machine's own extra CAs (a TLS-inspecting proxy in front of the package
        # registries): trusted by the image's ca-certificates like the host trusts them.
        if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
            mkdir -p "$rootfs/usr/local/share/ca-certificates"
            cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
            cp_log "base trusts this machine's local CAs: $(cd /usr/local/share/ca-certificates && echo *.crt)"
        fi
        mkdir -p "$(dirname "$tarball")"
        tar -C "$rootfs" --numeric-owner -cf "$tarball" .
        rm -rf "$rootfs"
    else
        cp_log "base rootfs from cache $tarball"
    fi
    cp_import "$arch" "$tarball" "$tag"
}

# cp_import ARCH TARBALL TAG: the rootfs tarball as a one-layer image of ARCH. Like `docker
# import`, but through `docker load` of an image archive whose config names the
# architecture: `docker import --platform` is ignored by Debian's engine (not experimental).
cp_import() {
    local arch=$1 tarball=$2 tag=$3 dir digest darch variant
    case $arch in
        amd64) darch=amd64 variant="" ;;
        arm64) darch=arm64 variant=v8 ;;
        armhf) darch=arm variant=v7 ;;
        *) cp_fail "cp_import: no Docker name for the Debian architecture $arch" ;;
    esac
    dir=$CP_TMP/image-$arch
    mkdir -p "$dir"
    ln "$tarball" "$dir/layer.tar" 2>/dev/null || cp "$tarball" "$dir/layer.tar"
    digest=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
    cat >"$dir/config.json" <<JSON
{"architecture": "$darch", "variant": "$variant", "os": "linux",
 "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "config": {"Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
 "rootfs": {"type": "layers", "diff_ids": ["sha256:$digest"]},
 "history": [{"created_by": "debootstrap --variant=minbase (ci/docker-lib.sh)"}]}
JSON
    printf '[{"Config": "config.json", "RepoTags": ["%s"], "Layers": ["layer.tar"]}]\n' "$tag" >"$dir/manifest.json"
    tar -C "$dir" -cf - manifest.json config.json layer.tar | docker load >/dev/null
    rm -rf "$dir"
    cp_log "imported $tag ($(docker image inspect -f '{{.Os}}/{{.Architecture}}{{with .Variant}}/{{.}}{{end}}' "$tag"))"
}

# cp_build TAG [docker build args...]: the repository's Dockerfile, legacy builder (no
# buildx needed), build containers on the host network (there is no bridge).
cp_build() {
    local tag=$1
    shift
    DOCKER_BUILDKIT=0 docker build --network host --force-rm -t "$tag" "$@" "$CP_REPO" \
        >"$CP_TMP/build.log" 2>&1 || { tail -n 40 "$CP_TMP/build.log"; cp_fail "docker build failed"; }
    cp_log "built $tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
}

# cp_make_repo DIR: a tiny project as a bare repository DIR/demo.git (no dependencies, so
# nothing needs the network): main.py prints, then sleeps, and exits cleanly on SIGTERM.
cp_make_repo() {
    local dir=$1 work
    work="$dir/demo-work"
    mkdir -p "$work"
    cat >"$work/main.py" <<'PY'
import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: (print("demo: SIGTERM, bye", flush=True), sys.exit(0)))
print(f"demo: hello from {os.getuid()} in {os.getcwd()}", flush=True)
while True:
    time.sleep(1)
PY
    : >"$work/requirements.txt"
    git -C "$work" init -q -b main
    git -C "$work" add main.py requirements.txt
    git -C "$work" -c user.name=CI -c user.email=ci@localhost commit -q -m "demo app"
    git clone -q --bare "$work" "$dir/demo.git"
    git -C "$dir/demo.git" update-server-info # for git's dumb http
    rm -rf "$work"
}

# cp_wait_for SECONDS DESCRIPTION CMD...: retry CMD once a second until it succeeds.
cp_wait_for() {
    local limit=$1 what=$2 i
    shift 2
    for i in $(seq 1 "$limit"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    cp_log "gave up waiting for $what after ${limit}s"
    return 1
}

# cp_wait_healthy CONTAINER SECONDS: until Docker runs the image's HEALTHCHECK successfully.
cp_wait_healthy() {
    local name=$1 limit=$2 i state=""
    for i in $(seq 1 "$limit"); do
        state=$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$name")
        case $state in
            "running healthy") cp_log "$name healthy after ${i}s"; return 0 ;;
            running*) sleep 1 ;;
            *) cp_fail "container $name is $state" ;;
        esac
    done
    cp_fail "container $name not healthy after ${limit}s ($state)"
}

# cp_check_running CONTAINER PROGRAM: supervisorctl in the container shows PROGRAM RUNNING.
cp_check_running() {
    local name=$1 program=$2 status
    status=$(docker exec "$name" supervisorctl -c /data/supervisord.conf status "$program" || true)
    echo "    $status"
    grep -Eq "^$program +RUNNING" <<<"$status" || cp_fail "$program is not RUNNING in $name"
}

# cp_enable_emulation ARCH (arm64, armhf …): qemu-user-static registered with binfmt_misc,
# so that ARCH's binaries run here (also in chroots and containers: the F flag). What this
# step mounts or registers is undone at teardown; skips where emulation cannot be had.
cp_enable_emulation() {
    local arch=$1 qarch spec magic mask interp
    case $arch in
        arm64) qarch=aarch64 ;;
        armhf) qarch=arm ;;
        *) qarch=$arch ;;
    esac
    [ "$(dpkg --print-architecture)" = "$arch" ] && return 0
    cp_apt_install "qemu-$qarch-static:qemu-user-static"
    if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
        mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
            cp_skip "cannot mount binfmt_misc at /proc/sys/fs/binfmt_misc (not privileged?)"
        CP_ON_EXIT+=("umount /proc/sys/fs/binfmt_misc 2>/dev/null")
    fi
    if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$qarch" ]; then
        spec=/usr/share/binfmts/qemu-$qarch
        [ -f "$spec" ] || cp_skip "no binfmt description $spec in qemu-user-static"
        magic=$(awk '$1 == "magic" { print $2 }' "$spec")
        mask=$(awk '$1 == "mask" { print $2 }' "$spec")
        interp=$(awk '$1 == "interpreter" { print $2 }' "$spec")
        # F: the interpreter is opened now, so it works inside chroots and containers too
        echo ":qemu-$qarch:M:0:$magic:$mask:$interp:FP" >/proc/sys/fs/binfmt_misc/register 2>/dev/null ||
            cp_skip "cannot register qemu-$qarch with binfmt_misc"
        CP_ON_EXIT=("echo -1 > /proc/sys/fs/binfmt_misc/qemu-$qarch" "${CP_ON_EXIT[@]}")
        cp_log "registered qemu-$qarch with binfmt_misc"
    fi
    grep -q enabled "/proc/sys/fs/binfmt_misc/qemu-$qarch" ||
        cp_skip "qemu-$qarch is registered with binfmt_misc but disabled"
}
