# hmm-local-updater: one image for `hmm-updater api`, `hmm-updater worker` and `hmm-updater run`.
#   docker build -t hmm-local-updater .
#   docker build --target dashboard -t hmm-local-updater-dashboard .   # rq-dashboard on the same rq
# Any Debian 12 image with Python 3.11 works as BASE_IMAGE; scripts/build-base-image.sh makes one from
# Debian packages for machines without Docker Hub (then build with --network host).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv
WORKDIR /src
# Dependencies first, from pyproject alone, so a code change does not download them again.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY . .
RUN pip install --no-deps . && rm -rf build

FROM build AS dashboard-build
# rq-dashboard 0.9 imports six without declaring it; installed beside the app so both use one rq.
RUN pip install "rq-dashboard>=0.8" "six>=1.16"

FROM ${BASE_IMAGE} AS runtime
# redis-server only serves `hmm-updater run` without REDIS_URL (a private, in-container Redis).
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 updater \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/hmm-updater \
        --shell /usr/sbin/nologin updater \
    && install -d -o updater -g updater -m 0750 /var/lib/hmm-updater
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/hmm-updater

FROM runtime AS dashboard
COPY --from=dashboard-build /opt/venv /opt/venv
USER updater
EXPOSE 9181
ENV RQ_DASHBOARD_BIND=0.0.0.0 RQ_DASHBOARD_PORT=9181
# A port check: with basic auth set, every page answers 401.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python3 -c "import socket; socket.create_connection(('127.0.0.1', 9181), timeout=4).close()"
ENTRYPOINT ["rq-dashboard"]

FROM runtime AS updater
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="hmm-local-updater" \
      org.opencontainers.image.description="Updates Docker containers in place: pull first, keep the old one until the new one is healthy, roll back otherwise." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
COPY --from=build /opt/venv /opt/venv
# Non-root by default. The worker (and `run`) talks to /var/run/docker.sock: give it the socket's group
# (`--group-add $(stat -c %g /var/run/docker.sock)`) or run it as root; see docs/deploy.md.
USER updater
EXPOSE 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('UPDATER_PORT', '8081'), timeout=4)"
ENTRYPOINT ["hmm-updater"]
CMD ["api"]
