# syntax=docker/dockerfile:1
# SingSong in a container (docs/operations.md says more):
#   docker build -t singsong .
#   docker run --rm -p 127.0.0.1:8080:8080 -e SINGSONG_WEB_HOST=0.0.0.0 \
#       -e SINGSONG_WEB_TOKEN=... -v singsong-data:/data singsong
# SINGSONG_WEB_HOST=0.0.0.0 is needed inside a container (on 127.0.0.1, the default, the
# published port reaches nothing), and a web API that listens beyond localhost needs its
# token, SINGSONG_WEB_TOKEN. Add SINGSONG_TELEGRAM_TOKEN / SINGSONG_DISCORD_TOKEN with -e.
# Any other command runs the same way:
#   docker run --rm -v singsong-data:/data singsong melody -o /data/melody.ogg --json
# `singsong serve` finishes the jobs under way when stopped: give it time (docker stop -t 60).
# A `singsong worker` container serves no web page: run it with --no-healthcheck.

# --- build: SingSong and its Python packages in a virtual environment --------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# pyworld (the WORLD vocoder that holds sung vowels) is published as source only: it is
# compiled here, and only its built module goes on to the serving image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade "pip>=25.1"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY engine ./engine
COPY storage ./storage
COPY migrations ./migrations
# The serving image needs no torch: the melody model runs on numpy.
RUN /opt/venv/bin/pip install . && /opt/venv/bin/python -m compileall -q /opt/venv

# --- run: the tools the engine calls, the venv, and a user that is not root -------------------
FROM python:3.11-slim-bookworm
# ffmpeg decodes and encodes; FluidSynth (libfluidsynth, loaded by pyfluidsynth) renders the
# band with the FluidR3 General MIDI soundfont (/usr/share/sounds/sf2/FluidR3_GM.sf2, 148 MB;
# timgm6mb-soundfont is a 6 MB alternative that sounds worse); espeak-ng speaks lyrics.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg fluidsynth fluid-soundfont-gm espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 singsong \
    && mkdir /data && chown singsong /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH SINGSONG_DATA_DIR=/data PYTHONUNBUFFERED=1
USER singsong
WORKDIR /data
VOLUME /data
EXPOSE 8080
# Healthy while /healthz answers 200: the database answers and the job engine runs (curl is not
# in the slim image; Python is). It asks 127.0.0.1, which 0.0.0.0 includes.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SINGSONG_WEB_PORT', '8080'), timeout=8)" || exit 1
ENTRYPOINT ["singsong"]
CMD ["serve"]
