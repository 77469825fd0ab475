# The operator image that manifests/greenlight.yaml runs (not built in this repo's CI: it has no
# Docker engine). Build: docker build -t ghcr.io/greenlight-dev/greenlight:0.1.0 .
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && rm -rf /src
USER 65532:65532
ENTRYPOINT ["greenlight"]
CMD ["run"]
