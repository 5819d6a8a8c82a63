# One image per function, from this one Dockerfile:
#
#   docker build --build-arg FUNCTION=tasks -t ghcr.io/dueflow/tasks:<tag> .
#
# FUNCTION is one of functions/*/ (tasks, recurrence, reminders, notify, commands, deadletter,
# assistant, live, web); `make images` builds all nine. Every image holds the shared package (dueflow) with
# its dependencies and migrations, plus its function's main.py, served by functions-framework on
# $PORT (Knative sets it; 8080 otherwise), except the assistant's and live's, which their Knative
# Services start with `python /app/main.py` (uvicorn). The web image also holds its app and npm
# libraries (the `web` stage). The build stage's layers up to the shared package
# are the same for all of them, so they are built once. The local runtime (tools/, with pyyaml and
# confluent-kafka) and the test tools are in no image (docs/architecture.md).

ARG PYTHON_VERSION=3.11.13
# The web stage's npm (functions/web's libraries); nothing of it reaches an image.
ARG NODE_VERSION=20.19.5

# -- build: a virtual environment with the dependencies and the shared package ------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

# A venv without pip of its own: the base image's pip installs into it (--python), so the final
# image gets no installer at all.
RUN python -m venv --without-pip /opt/venv

WORKDIR /src

# The dependencies alone first, read from the shared package's pyproject.toml: this layer is
# rebuilt only when the dependencies change, not with every change of the code. All of them
# come as wheels, so no compiler is needed.
COPY shared/pyproject.toml shared/pyproject.toml
RUN python -c "import tomllib; deps = tomllib.load(open('shared/pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write(chr(10).join(deps))" \
    && python -m pip --python /opt/venv/bin/python install --only-binary=:all: --requirement /tmp/requirements.txt

# The shared package itself, as a regular (not editable) install into site-packages, with its
# package data (event schemas, OpenAPI document, Alembic migrations) and compiled bytecode (the
# root filesystem is read-only at run time).
COPY shared/ shared/
RUN python -m pip --python /opt/venv/bin/python install --no-deps ./shared \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# -- the web function's files: its app and the npm libraries it serves (functions/web) ------------
# Every other function gets an empty directory here. npm ci from the lock file, without install
# scripts; no Node is left in any image.
FROM node:${NODE_VERSION}-bookworm-slim AS web

ARG FUNCTION
WORKDIR /src
COPY functions/ functions/
RUN mkdir -p /out \
    && if [ -f "functions/${FUNCTION}/package-lock.json" ]; then \
        npm ci --prefix "functions/${FUNCTION}" --omit=dev --ignore-scripts --no-audit --no-fund \
        && cp -r "functions/${FUNCTION}/app" "functions/${FUNCTION}/node_modules" /out/; \
    fi

# -- the function's image ------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime

# Which function this image serves (see the top of the file).
ARG FUNCTION

# The user of the Knative manifests' securityContext (10001), and no package installer: the
# base image's pip, setuptools and wheel are removed.
RUN test -n "${FUNCTION}" || { echo "build with --build-arg FUNCTION=<function>" >&2; exit 1; } \
    && groupadd --system --gid 10001 dueflow \
    && useradd --system --uid 10001 --gid dueflow --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin dueflow \
    && python -m pip uninstall --yes --quiet pip setuptools wheel \
    && rm -rf /root/.cache

COPY --from=build /opt/venv /opt/venv
COPY --from=web /out/ /app/
COPY functions/${FUNCTION}/main.py /app/main.py
RUN python -m compileall -q /app

# functions-framework reads FUNCTION_TARGET, FUNCTION_SOURCE and PORT from the environment.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FUNCTION_TARGET=${FUNCTION} \
    FUNCTION_SOURCE=/app/main.py \
    PORT=8080

# (release.yml adds org.opencontainers.image.source and .revision.)
LABEL org.opencontainers.image.title="dueflow-${FUNCTION}" \
      org.opencontainers.image.description="dueflow's ${FUNCTION} function (functions-framework)"

WORKDIR /app
USER 10001:10001
EXPOSE 8080

ENTRYPOINT ["functions-framework"]
