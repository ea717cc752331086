# Serving image for the credit-risk MLflow model: Gunicorn + Uvicorn workers, model preloaded.
#
# Model fetched from the registry at start-up (MODEL_URI set by the Deployment):
#   podman build -t IMAGE .
# Model baked in, so pods never need the registry to start (credentials as a build secret, a
# file of MLFLOW_TRACKING_URI=... / MLFLOW_TRACKING_USERNAME=... lines, never a build arg):
#   podman build --target baked --build-arg BAKED_MODEL_URI=models:/credit-risk-scoring/7 \
#       --secret id=mlflow,src=mlflow.env -t IMAGE .

# Pinned by tag: no registry was reachable to read its digest. Replace with
# python:3.11.14-slim-bookworm@sha256:<digest> where one is. Any Debian image with python3
# and python3-venv works (the image test builds on one made with debootstrap).
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS build
# Pip and its caches stay in this stage; the runtime stage copies only the venv.
# Every package, dependencies included, comes from the lock at its pinned version and is
# checked against the lock's hashes: two builds a month apart install the same files.
RUN python3 -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes -r /tmp/requirements.lock \
    && /opt/venv/bin/pip uninstall --yes pip

FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    OMP_NUM_THREADS=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    HOME=/tmp
# The root filesystem is read-only in Kubernetes; /tmp is the only writable place, so the
# home directory (for any library cache) points there too.
RUN groupadd --gid 10001 serving \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin serving
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/serving
COPY app/ app/
COPY model_fetch/ model_fetch/
COPY model_wrapper/ model_wrapper/
COPY registry_scripts/ registry_scripts/
# The batch command (k8s/batch): its local engine needs nothing the server does not.
COPY batch_scoring/ batch_scoring/
# Bytecode is written now: at run time the code is read-only and owned by root.
RUN python -m compileall -q app model_fetch model_wrapper registry_scripts batch_scoring
USER 10001:10001
EXPOSE 8000
# Kubernetes uses its own probes; this serves podman and docker users.
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/readyz', timeout=2)"]
CMD ["gunicorn", "--config", "python:app.gunicorn_conf", "app.main:create_app()"]

# Downloads the model named by BAKED_MODEL_URI, with the registry's address and credentials
# from the `mlflow` build secret, which never reaches an image layer.
# Only the fetching code and the export command: the web app is not needed to download.
FROM build AS model
WORKDIR /srv/serving
COPY model_fetch/ model_fetch/
COPY registry_scripts/ registry_scripts/
ARG BAKED_MODEL_URI=""
RUN --mount=type=secret,id=mlflow \
    if [ -z "$BAKED_MODEL_URI" ]; then \
        echo "--target baked needs --build-arg BAKED_MODEL_URI=models:/NAME/VERSION" >&2; \
        exit 1; \
    fi \
    && if [ -f /run/secrets/mlflow ]; then set -a && . /run/secrets/mlflow && set +a; fi \
    && /opt/venv/bin/python -m registry_scripts.export \
        --model-uri "$BAKED_MODEL_URI" --output /opt/model

FROM runtime AS baked
COPY --from=model /opt/model /opt/model
ENV MODEL_URI=/opt/model

# The default target: the model is fetched at start-up from MODEL_URI.
FROM runtime AS fetch
