# controlplane: supervisord + the control plane + every project's app, in one container.
#
# Multi-arch (linux/amd64, linux/arm64, linux/arm/v7): only Debian packages and PyPI wheels
# that exist on all three (armv7 builds psutil and cffi from source, see below).
#
#   docker build -t controlplane .
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t controlplane .
#
# BASE is an argument so that CI can build from a Debian base it made itself (debootstrap,
# loaded into the engine under this default's tag) without pulling anything.
ARG BASE=debian:bookworm-slim

# ---- build: the wheel and the runtime venv, from uv.lock --------------------------------
FROM ${BASE} AS build

# The uv that reads the lock file; keep it equal to uv's version in uv.lock (a test checks).
ARG UV_VERSION=0.13.9
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# DL3008 (pin apt versions) is ignored: the versions are whatever the base's Debian release
# ships on each architecture; a pin breaks the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 # armv7 has no PyPI wheels for psutil and cffi: they are built from source there.
 && if [ "$(dpkg --print-architecture)" = armhf ]; then \
        apt-get install -y --no-install-recommends gcc libc6-dev python3-dev libffi-dev; \
    fi \
 && rm -rf /var/lib/apt/lists/*

# pip and uv trust the system's CA store (Debian's, plus any the base adds under
# /usr/local/share/ca-certificates, as behind a TLS-inspecting proxy) instead of their own.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
ENV PATH=/opt/uv/bin:$PATH \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never

WORKDIR /src
# Dependencies first (their layer is reused while only the code changes), exactly as locked,
# hash-checked; the project itself comes after, as a wheel.
COPY pyproject.toml uv.lock README.md ./
RUN uv export --frozen --no-dev --no-emit-project --format requirements-txt -o /tmp/requirements.txt \
 && uv venv --python /usr/bin/python3 /opt/controlplane \
 && uv pip install --python /opt/controlplane/bin/python --require-hashes -r /tmp/requirements.txt

COPY supervisord.conf.tmpl hatch_build.py ./
COPY templates/ templates/
COPY controlplane/ controlplane/
# The build hook (hatch_build.py) compiles the translations (.po → .mo) into the wheel.
RUN uv build --wheel --out-dir /tmp/dist . \
 && uv pip install --python /opt/controlplane/bin/python --no-deps /tmp/dist/*.whl \
 && /opt/controlplane/bin/controlplane --help > /dev/null \
 && /opt/controlplane/bin/python -c "from controlplane.i18n import LOCALE_DIR as d; \
assert (d / 'ru/LC_MESSAGES/controlplane.mo').is_file(), 'no compiled Russian catalog'"

# ---- runtime ----------------------------------------------------------------------------
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# python3 + python3-venv: the interpreter of the control plane and of every project's venv
# (CONTROLPLANE_PYTHON); git + openssh-client: fetching the projects over https and ssh
# (deploy keys); ca-certificates: https remotes; procps: ps, top and kill for the admin
# (`docker exec … ps`).
# DL3008 is ignored as above: the release's current package on each architecture.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        python3 python3-venv git openssh-client ca-certificates procps \
 && rm -rf /var/lib/apt/lists/* \
 # the projects' apps run as this unprivileged user (CONTROLPLANE_RUN_AS); never as root
 && useradd --system --uid 10001 --user-group --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app \
 # git (fetches, ssh with deploy keys) runs as this one (CONTROLPLANE_GIT_USER): neither
 # root, so no repository or variable reaches root, nor app, so no app can touch the mirrors
 && useradd --system --uid 10002 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cpgit

COPY --from=build /opt/controlplane /opt/controlplane

ENV PATH=/opt/controlplane/bin:$PATH \
    CONTROLPLANE_DATA_DIR=/data \
    CONTROLPLANE_RUN_AS=app \
    CONTROLPLANE_GIT_USER=cpgit \
    CONTROLPLANE_PYTHON=/usr/bin/python3 \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1

VOLUME /data
WORKDIR /data

# supervisord is PID 1 (`controlplane up` execs it). On SIGTERM it stops every program with
# its own stop signal and waits up to its stopwaitsecs (30 s for the control plane), so give
# `docker stop` / compose a grace period longer than that (compose: stop_grace_period: 60s).
STOPSIGNAL SIGTERM

# Healthy when supervisord answers on its socket, the control plane program is RUNNING and
# its bot (with a token set) polls Telegram; `controlplane health` prints the bot's state,
# so `docker inspect` shows why it is not (Telegram unreachable, token rejected).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["/bin/sh", "-c", "supervisorctl -c \"$CONTROLPLANE_DATA_DIR/supervisord.conf\" status controlplane | grep -q RUNNING && controlplane health"]

ENTRYPOINT ["controlplane", "up"]
