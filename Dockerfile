# One image for every moisson service; the command picks the service.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY moisson moisson
COPY producers producers
COPY processors processors
COPY schemas schemas
COPY sinks sinks
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 moisson
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/moisson
ENTRYPOINT ["moisson"]
CMD ["--help"]
