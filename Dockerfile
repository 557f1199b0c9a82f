# The credop image: `credop operator` (controller and admission webhooks) and
# `credop service` (the credential service). Non-root, read-only root filesystem
# friendly (bytecode is compiled at build time; /tmp is an emptyDir in the chart).
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install . \
 && python -m compileall -q /install

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /install /usr/local
USER 65532:65532
EXPOSE 8080 9443
ENTRYPOINT ["credop"]
CMD ["operator"]
