# One image for every moisson service; compose picks the command per service
# (sensors, process, sink, dashboard, topics, health).
# The install step is scripts/install.sh, the same script `make install` runs in CI.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY scripts/install.sh scripts/install.sh
COPY constraints.txt ./
COPY pyproject.toml README.md ./
COPY moisson moisson
COPY producers producers
COPY processors processors
COPY schemas schemas
COPY sinks sinks
RUN scripts/install.sh /opt/venv .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --no-log-init --uid 10001 --user-group --create-home --home-dir /home/moisson moisson
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /home/moisson
# The dashboard, and the metrics of the processor, the sink and the sensors (METRICS_*).
EXPOSE 8350 9101 9102 9103
ENTRYPOINT ["moisson"]
CMD ["--help"]
