# syntax=docker/dockerfile:1
# reportcycle: one image for the web app, the workers, the beat and the migration job
# (docker-compose.yml picks the command). Small, non-root, no secrets inside: every setting
# comes from the environment (or *_FILE) at run time.

# --- build: the project's wheel and the wheels of its dependencies ---------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY config ./config
COPY models ./models
COPY templates ./templates
COPY web ./web
COPY worker ./worker
RUN pip wheel --wheel-dir /wheels .

# --- run ---------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REPORTCYCLE_DATA_DIR=/var/lib/reportcycle
RUN groupadd --system --gid 10001 reportcycle \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/reportcycle \
       --create-home --shell /usr/sbin/nologin reportcycle
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels reportcycle
# Numeric, so that orchestrators can verify runAsNonRoot.
USER 10001:10001
WORKDIR /var/lib/reportcycle
EXPOSE 8000
# The web app's liveness; compose gives the worker and the beat their own checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["uvicorn", "web.app:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--forwarded-allow-ips=*"]
