# voxfleet TTS service image: the service code plus one model version, verified.
#
# Build through `rollout build` (canary/images.py), which makes the wheelhouse and
# passes the build args; by hand:
#   docker build \
#     --build-arg BASE_IMAGE=voxfleet/base:bookworm \
#     --build-arg MODEL_VERSION=v1.3.0 \
#     --build-arg MODEL_SHA256="$(sha256sum build/models/v1.3.0/manifest.json | cut -d' ' -f1)" \
#     --build-arg GIT_REVISION="$(git rev-parse HEAD)" \
#     -t voxfleet/tts:v1.3.0 .
#
# The build context must hold build/wheelhouse/ (every wheel of requirements/*.txt
# for CPython 3.11 x86_64) and build/models/<MODEL_VERSION>/ (manifest.json + files).
# Nothing is downloaded during the build: no apt, no PyPI (air-gapped GPU clusters
# build it the same way).
#
# BASE_IMAGE: production uses a CUDA PyTorch runtime image (Python 3.11, CUDA torch
# already installed, kept as is). Any Python 3.11 x86_64 image with the `venv`
# module works: the offline default here is voxfleet/base:bookworm, made by
# docker/build-base-image.sh. A Debian/Ubuntu base whose python3 lacks `venv` (no
# python3-venv package) must get it in the base image; this Dockerfile installs no
# OS packages.
ARG BASE_IMAGE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

# --- preflight: fail fast on missing build args, before the slow layers ---------
# (A stage of its own so the model args do not bust the cache of the dependency
# layers. BuildKit skips unused stages; the final stage checks again.)
FROM ${BASE_IMAGE} AS preflight
ARG MODEL_VERSION=
ARG MODEL_SHA256=
RUN test -n "${MODEL_VERSION}" || { echo "error: build arg MODEL_VERSION is required (e.g. --build-arg MODEL_VERSION=v1.3.0)" >&2; exit 1; }; \
    test -n "${MODEL_SHA256}" || { echo "error: build arg MODEL_SHA256 is required (sha256 of build/models/${MODEL_VERSION}/manifest.json)" >&2; exit 1; }

# --- deps: the venv, from the wheelhouse only ------------------------------------
FROM ${BASE_IMAGE} AS deps
COPY requirements/image.txt requirements/torch.txt /tmp/requirements/
COPY build/wheelhouse/ /tmp/wheelhouse/
# --system-site-packages: a CUDA base's torch (and its CUDA libraries) stay visible
# and are used; torch comes from the wheelhouse only where the base has none.
RUN python3 -m venv --system-site-packages /opt/venv \
 && if /opt/venv/bin/python -c 'import torch' 2>/dev/null; then \
        echo "torch from the base image: $(/opt/venv/bin/python -c 'import torch; print(torch.__version__)')"; \
    else \
        /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse -r /tmp/requirements/torch.txt; \
    fi \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse -r /tmp/requirements/image.txt \
 && /opt/venv/bin/python -c 'import torch, numpy, fastapi, uvicorn, gradio, soundfile, prometheus_client, pydantic'

# --- files: code and model, readable by every user -------------------------------
# Staged so the runtime layers get world-readable modes whatever the build host's
# umask (model builders often write 0700 directories) without a second copy of the
# model in the image.
FROM ${BASE_IMAGE} AS files
COPY service/ /opt/app/service/
COPY models/ /opt/app/models/
# Precompiled here because the root filesystem is read-only at run time.
RUN python3 -m compileall -q /opt/app && chmod -R a+rX /opt/app
ARG MODEL_VERSION=
COPY build/models/${MODEL_VERSION}/ /opt/model/
RUN chmod -R a+rX /opt/model

# --- runtime -------------------------------------------------------------------
FROM ${BASE_IMAGE}

# Runs as uid 10001 on a read-only root with a tmpfs at /tmp: everything that
# writes (caches, gradio uploads, matplotlib config) points under /tmp.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    GRADIO_TEMP_DIR=/tmp/gradio \
    GRADIO_ANALYTICS_ENABLED=False \
    MPLCONFIGDIR=/tmp/mpl \
    MODEL_DIR=/opt/model \
    MODEL_CACHE_DIR=/var/cache/voxfleet/models \
    HOST=0.0.0.0 \
    PORT=6006

RUN groupadd --gid 10001 voxfleet \
 && useradd --no-log-init --uid 10001 --gid 10001 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin voxfleet

COPY --from=deps /opt/venv /opt/venv
COPY --from=files /opt/app /opt/app

ARG MODEL_VERSION=
ARG MODEL_SHA256=
ARG MODEL_ENGINE=
ARG GIT_REVISION=unknown
ARG IMAGE_TAG=
ARG BUILD_DATE=
ARG SOURCE_URL=
ARG BASE_IMAGE

COPY --from=files /opt/model /opt/model

# Verify the model as the runtime user (which also proves it can read every file):
# the manifest's sha256 must be MODEL_SHA256, its version MODEL_VERSION, and every
# listed file must match its digest (service.model_dir.verify_model_dir).
USER 10001:10001
# `set -- $found` splits the verifier's output into its four words on purpose.
# hadolint ignore=SC2086
RUN test -n "${MODEL_VERSION}" || { echo "error: build arg MODEL_VERSION is required" >&2; exit 1; }; \
    test -n "${MODEL_SHA256}" || { echo "error: build arg MODEL_SHA256 is required" >&2; exit 1; }; \
    found="$(python -c 'from service.model_dir import verify_model_dir; m = verify_model_dir("/opt/model"); print(m.sha256, m.version, m.engine, len(m.files))')" \
        || { echo "error: model directory build/models/${MODEL_VERSION} failed verification (see above)" >&2; exit 1; }; \
    set -- $found; \
    [ "$1" = "${MODEL_SHA256}" ] || { echo "error: /opt/model/manifest.json has sha256 $1, expected MODEL_SHA256=${MODEL_SHA256}" >&2; exit 1; }; \
    [ "$2" = "${MODEL_VERSION}" ] || { echo "error: /opt/model/manifest.json has version $2, expected MODEL_VERSION=${MODEL_VERSION}" >&2; exit 1; }; \
    [ -z "${MODEL_ENGINE}" ] || [ "$3" = "${MODEL_ENGINE}" ] || { echo "error: /opt/model/manifest.json has engine $3, expected MODEL_ENGINE=${MODEL_ENGINE}" >&2; exit 1; }; \
    echo "model $2 ($3) verified: sha256 $1, $4 files"

ENV MODEL_VERSION=${MODEL_VERSION} \
    IMAGE_TAG=${IMAGE_TAG} \
    GIT_REVISION=${GIT_REVISION}

LABEL org.opencontainers.image.title="voxfleet-tts" \
      org.opencontainers.image.description="voxfleet TTS service with model ${MODEL_VERSION}" \
      org.opencontainers.image.version="${MODEL_VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.voxfleet.model.version="${MODEL_VERSION}" \
      io.voxfleet.model.sha256="${MODEL_SHA256}" \
      io.voxfleet.engine="${MODEL_ENGINE}"

# cwd on the tmpfs: libraries that write next to the working directory (gradio's
# .gradio/) still work on a read-only root.
WORKDIR /tmp
EXPOSE 6006

# The start period covers a slow model load and warm-up (a real VoxCPM load takes
# minutes on a cold host). Docker does not expand ARGs in HEALTHCHECK flags, so a
# slower host overrides it at run time: `docker run --health-start-period=300s` or
# the Ansible role's healthcheck option (community.docker.docker_container
# healthcheck.start_period).
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "service.healthcheck"]

CMD ["python", "-m", "service"]
