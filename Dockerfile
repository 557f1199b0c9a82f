# The credop image: `credop operator` (controller and admission webhooks) and
# `credop service` (the credential service). Non-root, read-only root filesystem
# friendly (bytecode is compiled at build time; /tmp is an emptyDir in the chart).
#
# BASE_IMAGE: any Debian-like image with python3 (3.11 or later) and its venv
# module. The default is what users pull; the test bed builds FROM its own
# Debian bookworm image (hack/build-images). PIP_INSTALL_OPTIONS is passed to
# pip, e.g. `--no-index --find-links=/wheels` with a wheelhouse mounted there.
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_INSTALL_OPTIONS=""
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python3 -m venv /opt/credop \
 && /opt/credop/bin/pip install --no-cache-dir --disable-pip-version-check $PIP_INSTALL_OPTIONS . \
 && /opt/credop/bin/python -m compileall -q /opt/credop

FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/credop/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=build /opt/credop /opt/credop
# A name for uid 65532: getpass.getuser() (kopf's peering identity) fails without one.
RUN groupadd --system --gid 65532 credop \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin credop
USER 65532:65532
EXPOSE 8080 9443
ENTRYPOINT ["credop"]
CMD ["operator"]
