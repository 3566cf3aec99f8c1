# FaceGate API: a non-editable install of the serving dependencies at requirements.lock's versions, non-root.
#   docker build -t facegate .
#   docker run -p 8000:8000 -v facegate-data:/data -v /path/to/models:/models:ro facegate
# With no DATABASE_URL the embedded PostgreSQL keeps its data in /data/pgdata; the first start also writes the
# ONNX files of the networks (~90 MB) to /data/onnx. `make docker-smoke` builds and runs this image.
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module; `make docker-smoke` passes one made
# from Debian's packages, as no registry can be pulled from on its machines.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/facegate/bin:$PATH \
    FACEGATE_WEIGHTS_DIR=/models \
    FACEGATE_DATA_DIR=/data \
    FACEGATE_HOST=0.0.0.0

# libgomp: the OpenMP runtime of opencv's and ONNX Runtime's wheels (installed only where the base lacks it).
# The user is numeric, so that Kubernetes' runAsNonRoot can check it (deploy/k8s/ runs as the same ids).
RUN if ! ldconfig -p | grep -q libgomp.so.1; then \
        apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 facegate \
    && useradd --system --create-home --uid 10001 --gid 10001 facegate \
    && mkdir -p /models /data \
    && chown 10001:10001 /models /data

# pip's configuration for the build only (a mirror, a CA bundle): `make docker-smoke` passes this machine's.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT

# The dependencies in their own layer, before the source: a code change does not reinstall them. facenet-pytorch
# without its dependencies (no torch): MTCNN's weights as its wheel ships them, read from there, not downloaded.
WORKDIR /src
COPY pyproject.toml requirements.lock ./
RUN python3 -m venv /opt/facegate \
    && python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/dependencies.txt \
    && pip install -c requirements.lock -r /tmp/dependencies.txt \
    && pip install -c requirements.lock --no-deps facenet-pytorch \
    && rm /tmp/dependencies.txt

# The project itself, not editable: the source folder goes away once it is installed.
COPY . .
RUN pip install --no-deps . \
    && cd / && rm -rf /src \
    && facegate --help > /dev/null
WORKDIR /home/facegate

USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"
# serve applies the migrations first (under a lock; exits non-zero with the reason if the database or pgvector
# is missing), writes the ONNX files on the first start, loads the models, then answers.
CMD ["facegate", "serve"]
