# CPU image: serves the bundled models on the embedded engine.
#   docker build -t ponder . && docker run -p 8000:8000 ponder
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
