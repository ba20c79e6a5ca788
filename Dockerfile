# Serving image (default target): the app, its pinned serving dependencies and the shipped bundles.
# No TensorFlow, no compilers, no build tools; runs as a non-root user.
#   docker build -t propensity-service .
# Training image: the training extra on top, for retraining into a mounted models directory.
#   docker build --target training -t propensity-training .

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# --- serving dependencies, in a virtual environment copied whole into the final stage -------
FROM base AS serve-deps
COPY requirements/serve.txt /tmp/serve.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-virtualenv -r /tmp/serve.txt \
 && /opt/venv/bin/pip uninstall -y pip setuptools

# --- training: the whole project with the training extra -----------------------------------
FROM base AS training
WORKDIR /srv
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY app app
COPY training training
RUN pip install -c requirements/constraints.txt '.[training]' \
 && useradd --system --uid 10001 --home-dir /srv propensity
USER 10001
ENV TF_CPP_MIN_LOG_LEVEL=2 MPLCONFIGDIR=/tmp/matplotlib KERAS_HOME=/tmp/keras HOME=/tmp
ENTRYPOINT ["python", "-m", "training"]
CMD ["--help"]

# --- serving (the default target) ------------------------------------------------------------
FROM base AS serve
RUN useradd --system --uid 10001 --home-dir /srv propensity
COPY --from=serve-deps /opt/venv /opt/venv
WORKDIR /srv
COPY app app
COPY models models
ENV PATH=/opt/venv/bin:$PATH \
    PROPENSITY_MODELS_DIR=/srv/models \
    PROPENSITY_DEFAULT_MODEL=storefront \
    PROPENSITY_HOST=0.0.0.0 \
    PROPENSITY_PORT=8000 \
    PROPENSITY_WORKERS=1
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status != 200)"]
# uvicorn with the PROPENSITY_* settings: workers, graceful shutdown on SIGTERM, no server header.
CMD ["python", "-m", "app"]
