# FaceGate API on CPU PyTorch. Runs migrations, then uvicorn.
#   docker build -t facegate .
#   docker run -p 8000:8000 -e DATABASE_URL=postgresql://... -v /path/to/models:/models facegate
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FACEGATE_WEIGHTS_DIR=/models \
    FACEGATE_DATA_DIR=/data \
    FACEGATE_HOST=0.0.0.0

# libgomp: OpenMP runtime of opencv's wheels; libgl/glib are not needed by the headless build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml requirements.lock alembic.ini cli.py ./
COPY api ./api
COPY core ./core
COPY db ./db
COPY services ./services
COPY facegate_client ./facegate_client
# The versions of requirements.lock. PyTorch's CPU index serves the same torch/torchvision versions as CPU-only
# builds (2.14.1+cpu satisfies the lock's ==2.14.1), which keeps the image free of CUDA libraries; the lock's
# nvidia-* pins are constraints only, so nothing installs them.
RUN pip install --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple \
        -c requirements.lock -e . \
    && groupadd --system --gid 10001 facegate \
    && useradd --system --create-home --uid 10001 --gid 10001 facegate \
    && mkdir -p /models /data \
    && chown 10001:10001 /models /data
# Numeric, so that Kubernetes' runAsNonRoot can check it (deploy/k8s/deployment.yaml runs as the same ids).
USER 10001:10001

EXPOSE 8000
VOLUME ["/models", "/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"
# Migrations first (exits non-zero with the reason if the database or pgvector is missing), then the API.
CMD ["sh", "-c", "facegate migrate && exec facegate serve"]
