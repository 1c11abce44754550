# syntax=docker/dockerfile:1
# SingSong in a container: `docker build -t singsong .`, then
# `docker run --rm -p 127.0.0.1:8080:8080 -e SINGSONG_WEB_HOST=0.0.0.0 -v singsong-data:/data singsong`
# (the bot; add SINGSONG_TELEGRAM_TOKEN / SINGSONG_DISCORD_TOKEN with -e), or any other
# command: `docker run --rm -v singsong-data:/data singsong melody -o /data/melody.ogg --json`.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade "pip>=25.1"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY engine ./engine
COPY storage ./storage
COPY migrations ./migrations
# The serving image needs no torch: the melody model runs on numpy.
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg fluidsynth fluid-soundfont-gm espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 singsong \
    && mkdir /data && chown singsong /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH SINGSONG_DATA_DIR=/data PYTHONUNBUFFERED=1
USER singsong
WORKDIR /data
ENTRYPOINT ["singsong"]
EXPOSE 8080
CMD ["serve"]
