# The operator image that manifests/greenlight.yaml runs (not built in this repo's CI: it has no
# Docker engine). Build: docker build -t ghcr.io/greenlight-dev/greenlight:0.1.0 .
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && rm -rf /src
# No passwd entry exists for 65532: name the user here, or anything that asks for it (kopf's
# peering identity, getpass) fails with "uid not found". HOME must exist for the same reason.
ENV USER=greenlight HOME=/tmp
USER 65532:65532
ENTRYPOINT ["greenlight"]
CMD ["run"]
