# The Yaguar station in a container (docs/operations.md, "Running the station in Docker").
#
#   docker build -t yaguar-station .                       # base: the official Python image (a registry)
#   docker build --build-arg BASE_IMAGE=my/debian:bookworm -t yaguar-station .   # any Debian bookworm
#   docker compose up -d                                  # with Mosquitto; --profile postgres for PostgreSQL
#
# Debian packages are installed only when the base image lacks them, and Python packages come from
# docker/wheelhouse/ when it holds wheels (`./dev.sh docker-base` fills it), else from PyPI: so a base that
# has the packages, plus a wheelhouse, builds with no network at all (that is how the tests build it).
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS runtime
# OpenCL on the GPU passed in with /dev/dri: the ICD loader, Mesa's driver (AMD and others) and Intel's;
# CA certificates to fetch models; Mosquitto, which docker-compose.yml runs from this same image (one
# user for the files the station and the broker share). No CPU OpenCL (PoCL): with no GPU,
# backend = "auto" runs onnxruntime, faster on a CPU. (On arm64 leave out intel-opencl-icd: amd64 only.)
ARG DEBIAN_PACKAGES="ca-certificates ocl-icd-libopencl1 mesa-opencl-icd intel-opencl-icd mosquitto"
RUN set -eu; missing=""; \
    python3 -c "import ensurepip, venv" 2>/dev/null || missing="python3 python3-venv"; \
    for pkg in $DEBIAN_PACKAGES; do \
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"; \
    done; \
    if [ -n "$missing" ]; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    useradd --system --uid 10001 --user-group --home-dir /var/lib/yaguar --shell /usr/sbin/nologin yaguar; \
    usermod -a -G video yaguar; \
    install -d -o yaguar -g yaguar /etc/yaguar /var/lib/yaguar /var/lib/yaguar/data /var/lib/yaguar/media \
      /var/lib/yaguar/models /var/lib/mosquitto /etc/mosquitto/yaguar

# The Python dependencies, in their own stage and layer: rebuilt only when pyproject.toml or the
# wheelhouse changes, not when the code does.
FROM runtime AS deps
COPY docker/wheelhouse/ /wheels/
COPY pyproject.toml /src/
RUN set -eu; \
    python3 -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
extras = [r for e in ('station', 'opencl', 'postgres', 'train') for r in p['optional-dependencies'][e]]; \
print('\n'.join(p['dependencies'] + extras + ['setuptools>=69', 'wheel']))" >/src/requirements.txt; \
    python3 -m venv /opt/yaguar/venv; \
    if ls /wheels/*.whl >/dev/null 2>&1; then from="--no-index --find-links /wheels"; else from=""; fi; \
    /opt/yaguar/venv/bin/pip install --no-cache-dir $from -r /src/requirements.txt

FROM runtime
COPY --from=deps /opt/yaguar/venv /opt/yaguar/venv
COPY pyproject.toml setup.py README.md /src/
COPY core /src/core
COPY protocol /src/protocol
COPY kernels /src/kernels
COPY engine /src/engine
COPY alerts /src/alerts
COPY agent /src/agent
COPY server /src/server
# matplotlib's font cache made now, not at each start of a new container (seconds on a small PC)
ENV MPLCONFIGDIR=/opt/yaguar/matplotlib
RUN /opt/yaguar/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation /src && rm -rf /src; \
    /opt/yaguar/venv/bin/python -c "import matplotlib.font_manager"; chown -R yaguar:yaguar "$MPLCONFIGDIR"
COPY docker/entrypoint.sh docker/healthcheck.py docker/station.toml docker/mosquitto.conf \
  /opt/yaguar/
COPY systemd/mosquitto/yaguar.conf /etc/mosquitto/conf.d/yaguar.conf

ENV PATH=/opt/yaguar/venv/bin:$PATH \
    YAGUAR_CONFIG=/etc/yaguar/station.toml \
    PYTHONUNBUFFERED=1
# config, database, frames, models: each its own volume (docker-compose.yml names them)
VOLUME ["/etc/yaguar", "/var/lib/yaguar/data", "/var/lib/yaguar/media", "/var/lib/yaguar/models"]
USER yaguar
WORKDIR /var/lib/yaguar
EXPOSE 8080
# /healthz (database, broker) and whether the pipeline can analyse frames (models): healthcheck.py
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["/opt/yaguar/venv/bin/python", "/opt/yaguar/healthcheck.py"]
ENTRYPOINT ["/opt/yaguar/entrypoint.sh"]
CMD ["run"]
