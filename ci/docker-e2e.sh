#!/usr/bin/env bash
# CI: prove the image end to end (issue 6, part 3).
#
# A private Docker engine (no bridge, no NAT), a Debian base made with debootstrap and
# imported under the Dockerfile's default base tag, `docker build`, then the container on
# the host network with a fresh /data: two projects (a bare repository bind-mounted as a
# local path, and the same repository over git's dumb http on loopback) are added and
# deployed with the CLI inside the container, supervisord shows them RUNNING as the `app`
# user, `docker stop` stops the apps cleanly, and a new container on the same /data brings
# them back. The Telegram part runs when tests/support/botapi.py and the bot exist.
#
# Skips (exit 0, reason printed) only where no engine can be had; fails otherwise.
# CP_BASE_CACHE=DIR keeps the debootstrapped base between runs (development only).
set -euo pipefail
CP_STEP=docker-e2e
# shellcheck source=ci/docker-lib.sh
. "$(dirname "$0")/docker-lib.sh"
cd "$CP_REPO"

IMAGE=controlplane:ci
NAME=cp-e2e-$$
BASE=$(sed -n 's/^ARG BASE=//p' Dockerfile)

cp_require_root
cp_mktemp
trap cp_teardown EXIT
cp_apt_install dockerd:docker.io debootstrap:debootstrap git:git
cp_start_dockerd

DATA=$CP_TMP/data
GIT=$CP_TMP/git
mkdir -p "$DATA" "$GIT"
CP_DUMP_DIRS+=("$DATA")

# in the container: docker exec NAME ARGS...
dx() { docker exec "$NAME" "$@"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# -- the Telegram side: the tests' fake Bot API on loopback, when it and the bot exist ---------
BOT_ENV=()
BOT_DIR=""
start_botapi() {
    if [ ! -f tests/support/botapi.py ]; then
        cp_log "Telegram part skipped: tests/support/botapi.py (the fake Bot API server) is not in the tree"
        return 0
    fi
    if [ ! -d controlplane/bot ]; then
        cp_log "Telegram part skipped: the control plane has no bot yet (no controlplane/bot)"
        return 0
    fi
    [ -x .venv/bin/python ] || cp_fail "the Telegram part needs the project's .venv (make test first)"
    BOT_DIR=$CP_TMP/botapi
    mkdir -p "$BOT_DIR"
    .venv/bin/python ci/botapi_probe.py serve "$BOT_DIR" >"$BOT_DIR/probe.log" 2>&1 &
    CP_PIDS+=($!)
    cp_wait_for 30 "the fake Bot API" test -s "$BOT_DIR/env" || {
        cat "$BOT_DIR/probe.log"
        cp_fail "the fake Bot API did not start"
    }
    mapfile -t BOT_ENV <"$BOT_DIR/env"
    cp_log "fake Bot API up: $(grep TELEGRAM_API_URL "$BOT_DIR/env")"
}

# -- the container ---------------------------------------------------------------------------
# The container's env file: .env.example as shipped (so every setting in it must parse),
# with the lines this test needs put in place of the example's.
write_env() {
    local env=$CP_TMP/env e
    cp .env.example "$env"
    for e in CONTROLPLANE_ALLOW_FILE_URLS=1 "${BOT_ENV[@]}"; do
        sed -i "/^${e%%=*}=/d" "$env"
        echo "$e" >>"$env"
    done
}

run_container() {
    write_env
    CP_CONTAINERS+=("$NAME")
    docker run -d --name "$NAME" --network host \
        --health-interval 2s --health-timeout 10s --health-retries 3 \
        -v "$DATA:/data" -v "$GIT:/git:ro" --env-file "$CP_TMP/env" "$IMAGE" >/dev/null
    cp_wait_healthy "$NAME" 120
}

check_app() {
    local name=$1 pid user history
    cp_check_running "$NAME" "$name-prod"
    history=$(dx controlplane history "$name")
    echo "    ${history//$'\n'/$'\n'    }"
    grep -Eq '^#1 .*live prod' <<<"$history" || cp_fail "history of $name does not show #1 live prod"
    pid=$(dx supervisorctl -c /data/supervisord.conf pid "$name-prod")
    user=$(dx stat -c %U "/proc/$pid")
    [ "$user" = app ] || cp_fail "$name-prod runs as $user, not app"
    dx readlink "/srv/$name" | grep -q "/data/projects/$name/releases/1-" ||
        cp_fail "/srv/$name is not a link to release #1"
    cp_wait_for 20 "$name's output" grep -q "demo: hello from 10001" "$DATA/logs/$name-prod.out.log" ||
        cp_fail "$name-prod did not print its greeting as uid 10001"
    cp_log "$name-prod RUNNING as app, /srv/$name -> $(dx readlink "/srv/$name")"
}

e2e() {
    cp_make_repo "$GIT"
    local port
    port=$(free_port)
    (cd "$GIT" && exec python3 -m http.server --bind 127.0.0.1 "$port") >"$CP_TMP/http.log" 2>&1 &
    CP_PIDS+=($!)
    cp_wait_for 20 "the git http server" git ls-remote "http://127.0.0.1:$port/demo.git" ||
        cp_fail "git http server on 127.0.0.1:$port"
    start_botapi

    run_container
    dx controlplane --help >/dev/null
    dx controlplane status

    # a local path (bind-mounted bare repository) and git's dumb http on loopback
    dx controlplane project add demo --repo /git/demo.git --path /srv/demo
    dx controlplane project add web --repo "http://127.0.0.1:$port/demo.git" --path /srv/web
    timeout 600 docker exec "$NAME" controlplane deploy demo
    timeout 600 docker exec "$NAME" controlplane deploy web
    echo "  supervisorctl status:"
    dx supervisorctl -c /data/supervisord.conf status | sed 's/^/    /'
    check_app demo
    check_app web
    check_bot

    # docker stop: SIGTERM to supervisord, which stops every app with its own SIGTERM
    local t0=$SECONDS
    docker stop -t 60 "$NAME" >/dev/null
    cp_log "docker stop took $((SECONDS - t0))s, exit code $(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
    [ "$(docker inspect -f '{{.State.ExitCode}}' "$NAME")" = 0 ] || cp_fail "supervisord did not exit 0 on SIGTERM"
    grep -q "demo: SIGTERM, bye" "$DATA/logs/demo-prod.out.log" || cp_fail "demo-prod was not stopped with SIGTERM"

    # a new container on the same /data (an upgrade): the apps come back by themselves
    docker rm "$NAME" >/dev/null
    run_container
    cp_wait_for 60 "demo-prod back" sh -c "docker exec $NAME supervisorctl -c /data/supervisord.conf status demo-prod | grep -q RUNNING" ||
        cp_fail "demo-prod is not RUNNING in a new container on the same /data"
    check_app demo
    check_app web
    docker stop -t 60 "$NAME" >/dev/null
}

# -- Telegram: the bot in the container reached the fake Bot API on the host -----------------
check_bot() {
    [ -n "$BOT_DIR" ] || return 0
    .venv/bin/python ci/botapi_probe.py check "$BOT_DIR" || cp_fail "the bot did not talk to the fake Bot API"
}

cp_timed debootstrap cp_make_base "$(dpkg --print-architecture)" "$BASE"
cp_timed build cp_build "$IMAGE"
cp_timed e2e e2e
cp_log "PASSED: the image builds, deploys two projects and keeps them running across containers"
