# Shared by ci/docker-e2e.sh and ci/arm64-smoke.sh (sourced, not run).
#
# A private Docker engine for one CI step: its own data and exec roots under a temp dir, no
# bridge, no NAT rules, no IP forwarding (containers use --network host or none), and a
# Debian base made locally with debootstrap + docker import, since nothing can be pulled.
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

# cp_make_base ARCH TAG: debootstrap a minbase of the suite for ARCH and import it as TAG.
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
        if [ "$arch" = "$(dpkg --print-architecture)" ]; then
            debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$CP_TMP/debootstrap-$arch.log" 2>&1 ||
                { tail -n 30 "$CP_TMP/debootstrap-$arch.log"; cp_fail "debootstrap $arch failed"; }
        else
            # foreign: first stage unpacks, second stage runs the arch's own binaries (qemu)
            debootstrap --variant=minbase --arch="$arch" --foreign "$suite" "$rootfs" "$mirror" \
                >"$CP_TMP/debootstrap-$arch.log" 2>&1 &&
                chroot "$rootfs" /debootstrap/debootstrap --second-stage \
                    >>"$CP_TMP/debootstrap-$arch.log" 2>&1 ||
                { tail -n 30 "$CP_TMP/debootstrap-$arch.log"; cp_fail "debootstrap $arch failed"; }
        fi
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
    docker import --platform "linux/$arch" -c 'CMD ["bash"]' "$tarball" "$tag" >/dev/null
    cp_log "imported $tag ($(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$tag"))"
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
