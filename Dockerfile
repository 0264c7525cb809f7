# One image, two entry points: `jobgate-operator` and `jobgate-api` (deploy/manager chooses
# with `command`). One image because both are the same Python package, read the same
# settings and must be upgraded together (the API refuses exactly the jobs the operator
# cannot run); two images would only double what there is to build, scan and pin.
#
#   docker build -t <registry>/jobgate:0.1.0 .
#
# The jobs themselves run in their own image (JOBGATE_IMAGE), not in this one.

FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
# The package's folders are imported as jobgate.<folder> through the symlinks in src/jobgate.
COPY pyproject.toml README.md ./
COPY src ./src
COPY api ./api
COPY crds ./crds
COPY operator ./operator
COPY devcluster ./devcluster
# Wheels of jobgate and of every dependency, so the final stage installs offline and has
# no build tools.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.14-slim-bookworm
# The version in pyproject.toml: the wheel built above, never one from PyPI.
ARG JOBGATE_VERSION=0.1.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "jobgate==${JOBGATE_VERSION}"
# The `nonroot` uid of distroless images; deploy/ runs it with runAsNonRoot and a read-only root.
USER 65532:65532
EXPOSE 8265
CMD ["jobgate-api", "--host", "0.0.0.0", "--port", "8265"]
