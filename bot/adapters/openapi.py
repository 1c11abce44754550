"""The web API described as an OpenAPI 3.1 document (served at /api/openapi.json)."""

from __future__ import annotations

import copy
import re
from typing import Any

from bot.commands import CLIP_KINDS, NAME_LIMIT, REQUESTED_KINDS
from bot.weeks import WEEK
from engine.arrange import STYLES
from engine.audio import MAX_INPUT_BYTES
from engine.form import DEFAULT_FORM, FORMS
from engine.singer import MAX_LYRICS_CHARS
from engine.theory import PITCH_CLASS_NAMES
from storage.models import MAX_ID, JobStatus

JSON = "application/json"
KINDS = list(REQUESTED_KINDS)
KEYS = [f"{name} {mode}" for mode in ("major", "minor") for name in PITCH_CLASS_NAMES]
# The shapes the API checks, said once: the web adapter matches them (fullmatch), the
# document states them as JSON Schema patterns.
IDEMPOTENCY_KEY_FORMAT = re.compile(r"[A-Za-z0-9_-]{8,64}")
LINK_TOKEN_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
LANGUAGE_TAG_FORMAT = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{1,8}){0,3}")  # zh-Hans-CN
WEEK_PATTERN = f"^{WEEK.pattern}$"
LINK_TOKEN_PATTERN = f"^{LINK_TOKEN_FORMAT.pattern}$"
FORM = {"enum": list(FORMS), "default": DEFAULT_FORM,
        "description": "(sing, lyrics) full: intro, verse, a chorus of the person's own words "
                       "sung twice with a harmony voice, an ending; short: the words sung once"}
LANGUAGE = {"type": "string", "examples": ["de-DE", "es", "pt-br"],
            "pattern": f"^{LANGUAGE_TAG_FORMAT.pattern}$",
            "description": "(lyrics) the person's language setting (the page sends "
                           "navigator.language): the words are sung in the language they are "
                           "written in, and in this one when they do not tell"}
STYLE = {"enum": list(STYLES),
         "description": "(sing, lyrics, melody) the band; without it, a song has the "
                        "person's /style (pop at first) and a melody a piano with chords"}
KEY = {"enum": KEYS, "description": "(melody) the key; without it, any key"}
LYRICS = {"type": "string", "minLength": 1, "maxLength": MAX_LYRICS_CHARS,
          "description": f"(lyrics) the words, with a letter or digit in them: at most "
                         f"{MAX_LYRICS_CHARS} characters once on one line"}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 1},
                               "description": "seconds to wait"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json_body(_ref("Error"), description)


def _id_parameter(what: str) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "description": f"the {what}'s number",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def _enum_parameter(name: str, values: list[str], where: str = "path") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path",
            "schema": {"type": "string", "enum": values}}


DOWNLOAD = {"name": "download", "in": "query", "required": False,
            "description": "any value: as an attachment rather than inline",
            "schema": {"type": "string"}}
RANGE = {"name": "Range", "in": "header", "required": False,
         "description": "bytes=FIRST-LAST, bytes=FIRST- or bytes=-COUNT (anything else: the "
                        "whole file)",
         "schema": {"type": "string", "examples": ["bytes=0-1023"]}}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "a retry with the same key makes no second job",
                   "schema": {"type": "string",
                              "pattern": f"^{IDEMPOTENCY_KEY_FORMAT.pattern}$"}}
FILE_RESPONSES = {
    "206": {"description": "the byte range asked for",
            "headers": {"Content-Range": {"schema": {"type": "string"}}}},
    "416": {"description": "the range is outside the file",
            "headers": {"Content-Range": {"schema": {"type": "string"}}}},
}
STARTED_JOB = {
    "202": {**_json_body(_ref("Job"), "the job is queued; poll its url until it is done"),
            "headers": {"Location": {"schema": {"type": "string"},
                                     "description": "the job's url"}},
            "links": {"job": {"operationId": "getJob",
                              "parameters": {"id": "$response.body#/id"}}}},
    "400": _error("the request cannot be made into a song (the error says why)"),
    "404": _error("not one of this browser's songs"),
    "429": {**_error("too many requests: try again later"), "headers": RETRY_AFTER},
}
# What any operation under /api may answer besides its own statuses.
AWAY = {**_error("the database is away for longer than the request may wait: nothing was "
                 "made or changed; send it again"), "headers": RETRY_AFTER}
OUR_FAULT = _error("a fault of ours (logged); never the answer to a request's own mistake")
ANOTHER_SITE = _error("the request came from another site's page (its Origin is not this "
                      "host)")
TOO_LARGE = _error(f"the body is larger than the service takes ({MAX_INPUT_BYTES} bytes of "
                   "audio and a little more for the form)")
UNREADABLE = _error("the body cannot be read: a malformed form or JSON document")
NOT_JSON_OR_FORM = _error("the body is neither a multipart form nor JSON")
UNAUTHORIZED = {**_error("the web token is missing or wrong (only when SINGSONG_WEB_TOKEN "
                         "is set)"),
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}}
TRACK_LINKS = {name: {"operationId": operation,
                      "parameters": {"id": "$response.body#/track/id"}}
               for name, operation in (("file", "getTrackFile"), ("share", "shareTrack"),
                                       ("action", "trackAction"), ("link", "makeLink"),
                                       ("unlink", "revokeLink"))}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string",
                                       "description": "one sentence for the person"}}},
    "Gathering": {
        "type": "object",
        "required": ["token", "url", "status", "closes_at", "voices", "started_by_me", "joined",
                     "job", "song"],
        "properties": {
            "token": {"type": "string", "pattern": LINK_TOKEN_PATTERN},
            "url": {"type": "string", "description": "the page to send to the others"},
            "status": {"enum": ["open", "closed", "dropped"]},
            "closes_at": {"type": "string", "format": "date-time"},
            "voices": {"type": "array", "items": {"type": "string"},
                       "description": "the names of the voices so far, in join order"},
            "started_by_me": {"type": "boolean"}, "joined": {"type": "boolean"},
            "job": {"type": ["object", "null"], "properties": {"id": {"type": "integer"}}},
            "song": {"type": ["object", "null"],
                     "properties": {"track_id": {"type": "integer"},
                                    "audio_url": {"type": "string"}}},
            "message": {"type": "string"}}},
    "Message": {"type": "object", "required": ["message"],
                "properties": {"message": {"type": "string"},
                               "track_id": {"type": "integer"}}},
    "Track": {
        "type": "object",
        "required": ["id", "kind", "created_at", "duration_s", "key", "tempo_bpm", "shared",
                     "parts", "urls", "form", "sections", "language", "about", "title",
                     "style", "lyrics", "origin", "link"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": KINDS},
            "title": {"type": "string", "examples": ["Velvet Harbour"],
                      "description": "its name: the first line of its lyrics, or two words "
                                     "drawn from its seed; a piano version's says so"},
            "style": {"oneOf": [{"enum": list(STYLES)}, {"type": "null"}],
                      "description": "the band (null: a melody on the piano with chords, or "
                                     "a piano version)"},
            "lyrics": {"type": ["string", "null"], "description": "a song of lyrics: its words"},
            "origin": {"type": "string",
                       "examples": ["Another melody for “Velvet Harbour”, from your "
                                    "recording."],
                       "description": "where it came from: the recording, and the song a "
                                      "button made it from ('' for a melody asked for)"},
            "link": {"description": "its public page, when its maker made one",
                     "oneOf": [{"type": "null"}, _ref("Link")]},
            "created_at": {"type": "string", "format": "date-time"},
            "duration_s": {"type": "number", "description": "seconds"},
            "key": {"type": ["string", "null"], "examples": ["A minor"]},
            "tempo_bpm": {"type": ["number", "null"], "description": "beats per minute"},
            "shared": {"type": "boolean", "description": "in the pool for the weekly album"},
            "parts": {"type": "array", "items": {"enum": ["audio", "midi", "picture"]},
                      "description": "its files; a song's picture is listed before it is "
                                     "drawn (on its first fetch)"},
            "urls": {"type": "object", "description": "part -> url of the file",
                     "additionalProperties": {"type": "string"}},
            "form": {"enum": [*FORMS, None],
                     "description": "a song's form (null for a melody or a piano version)"},
            "sections": {"type": "array", "description": "a song's sections, in order",
                         "items": {"type": "object", "required": ["name", "start_s"],
                                   "properties": {
                                       "name": {"enum": ["intro", "verse", "chorus",
                                                         "ending"]},
                                       "start_s": {"type": "number",
                                                   "description": "seconds"}}}},
            "language": {
                "description": "lyrics: the language they were sung in, and what chose it "
                               "(the words, the person's setting, or the default)",
                "oneOf": [{"type": "null"},
                          {"type": "object", "required": ["code", "name", "chosen_by"],
                           "properties": {"code": {"type": "string", "examples": ["es"]},
                                          "name": {"type": "string",
                                                   "examples": ["Spanish"]},
                                          "chosen_by": {"enum": ["text", "setting",
                                                                 "default"]}}}]},
            "about": {"type": "string", "examples": ["Verse, chorus x2. Sung in Spanish."],
                      "description": "a song's parts and language in a sentence, as the "
                                     "chat replies say them (empty for the others)"},
        },
    },
    "Link": {
        "type": "object", "required": ["url", "credit"],
        "properties": {
            "url": {"type": "string", "pattern": f"^/s/{LINK_TOKEN_FORMAT.pattern}$",
                    "description": "the song's public page: a player, its picture, its credit "
                                   "and the tags chat apps preview (Open Graph, Twitter "
                                   "card); /audio, /picture and /player below it"},
            "credit": {"type": "string", "description": "who the page says made it"}}},
    "LinkRequest": {
        "type": "object",
        "properties": {"credit": {"enum": ["name", "anonymous"], "default": "name",
                                  "description": "name: the page credits the person's name "
                                                 "(see /api/name); anonymous: 'a SingSong "
                                                 "singer'"}}},
    "Job": {
        "type": "object",
        "required": ["id", "kind", "status", "error", "ahead", "track", "url"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": KINDS},
            "status": {"enum": [status.value for status in JobStatus]},
            "error": {"type": ["string", "null"], "description": "why it failed, when it did"},
            "ahead": {"type": "integer", "description": "jobs queued before this one"},
            "track": {"oneOf": [_ref("Track"), {"type": "null"}]},
            "url": {"type": "string"},
            "message": {"type": "string", "description": "a short 'working on it' note"},
        },
    },
    "JobForm": {
        "type": "object", "required": ["kind"],
        "properties": {
            "kind": {"enum": KINDS},
            "audio": {"type": "string", "format": "binary",
                      "contentMediaType": "application/octet-stream",
                      "description": f"({', '.join(CLIP_KINDS)}; required there) the voice "
                                     f"clip: any audio ffmpeg reads, 1 to {MAX_INPUT_BYTES} "
                                     f"bytes, a few seconds to a minute"},
            "text": LYRICS,
            "form": FORM,
            "language": LANGUAGE,
            "key": KEY,
            "style": STYLE,
        },
    },
    "JobJson": {
        "type": "object", "required": ["kind"],
        "properties": {
            "kind": {"enum": [kind for kind in KINDS if kind not in CLIP_KINDS]},
            "text": LYRICS,
            "form": FORM,
            "language": LANGUAGE,
            "key": KEY,
            "style": STYLE,
        },
    },
    "History": {"type": "object", "required": ["tracks"],
                "properties": {"tracks": {"type": "array", "items": _ref("Track"),
                                          "description": "newest first"}}},
    "Options": {
        "type": "object",
        "required": ["kinds", "styles", "keys", "forms", "max_clip_bytes", "next_album"],
        "properties": {"kinds": {"type": "array", "items": {"type": "string"}},
                       "styles": {"type": "array", "items": {"type": "string"}},
                       "keys": {"type": "array", "items": {"type": "string"}},
                       "forms": {"type": "array", "items": {"type": "string"}},
                       "max_clip_bytes": {"type": "integer"},
                       "next_album": {
                           "type": "object", "required": ["week", "comes_out_at"],
                           "description": "the album that songs shared now go into",
                           "properties": {
                               "week": {"type": "string", "pattern": WEEK_PATTERN},
                               "comes_out_at": {"type": "string", "format": "date-time"}}}},
    },
    "AlbumTrack": {
        "type": "object",
        "required": ["position", "title", "credit", "start_s", "end_s", "key"],
        "properties": {
            "position": {"type": "integer", "minimum": 1},
            "title": {"type": "string", "examples": ["Song #12 by Alice"]},
            "credit": {"type": "string", "description": "the name of whose voice it is, or "
                       "'a SingSong singer'"},
            "start_s": {"type": "number", "description": "its chapter in the album file: start"},
            "end_s": {"type": "number", "description": "its chapter in the album file: end"},
            "key": {"type": ["string", "null"], "examples": ["A minor"]},
        },
    },
    "Name": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": NAME_LIMIT,
                                "examples": ["Alice"]},
                       "message": {"type": "string", "description": "what the chat says"}},
    },
    "Album": {
        "type": "object", "required": ["week", "duration_s", "tracks", "files", "page"],
        "properties": {
            "week": {"type": "string", "pattern": WEEK_PATTERN,
                     "examples": ["2026-W47"]},
            "duration_s": {"type": "number", "description": "seconds"},
            "tracks": {"type": "array", "items": _ref("AlbumTrack"), "description": "in order"},
            "files": {"type": "object",
                      "description": "the files that exist: audio (OGG/Opus), mp3, cover (PNG)",
                      "properties": {"audio": {"type": "string"}, "mp3": {"type": "string"},
                                     "cover": {"type": "string"}},
                      "additionalProperties": False},
            "page": {"type": "string", "description": "the album's web page",
                     "examples": ["/album?week=2026-W47"]},
        },
    },
}

GATHERING = {"name": "token", "in": "path", "required": True,
             "description": "the group song's link token",
             "schema": {"type": "string", "pattern": LINK_TOKEN_PATTERN}}
NO_GATHERING = _error("no group song at that link (or it is gone)")

PATHS: dict[str, Any] = {
    "/api/openapi.json": {"get": {
        "summary": "This document", "operationId": "openapi",
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {JSON: {"schema": {"type": "object"}}}}}}},
    "/api/options": {"get": {
        "summary": "What the page may offer: kinds of job, band styles, keys, song forms, "
                   "the clip limit, and when the next album comes out",
        "operationId": "options",
        "responses": {"200": _json_body(_ref("Options"), "the choices")}}},
    "/api/jobs": {"post": {
        "summary": "Start a song from a clip or lyrics, a new melody, or a piano version",
        "operationId": "createJob",
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": _ref("JobForm"),
                                    "encoding": {"audio": {"contentType": "audio/*, video/*, "
                                                           "application/octet-stream"}}},
            JSON: {"schema": _ref("JobJson")}}},
        "responses": {**STARTED_JOB, "400": _error("the request cannot be made into a song, "
                                                   "or the body is malformed (the error "
                                                   "says why)"),
                      "413": TOO_LARGE, "415": NOT_JSON_OR_FORM}}},
    "/api/jobs/{id}": {"get": {
        "summary": "A job of this browser's: its status, place in the queue and song",
        "operationId": "getJob", "parameters": [_id_parameter("job")],
        "responses": {"200": {**_json_body(_ref("Job"), "the job"), "links": TRACK_LINKS},
                      "404": _error("not one of this browser's jobs")}}},
    "/api/history": {"get": {
        "summary": "This browser's songs, newest first", "operationId": "history",
        "responses": {"200": _json_body(_ref("History"), "the songs")}}},
    "/api/tracks/{id}/{part}": {"get": {
        "summary": "A file of a song: audio (OGG/Opus), midi or picture (PNG)",
        "description": "A song's picture (1200 x 630: its voice's line over the melody's "
                       "notes) is drawn when it is first asked for, here or on its public "
                       "page, and kept: the first fetch takes a few tenths of a second "
                       "longer, later ones send the kept file.",
        "operationId": "getTrackFile",
        "parameters": [_id_parameter("song"), _enum_parameter("part", ["audio", "midi",
                                                                      "picture"]),
                       DOWNLOAD, RANGE],
        "responses": {
            "200": {"description": "the file, with a download filename", "content": {
                "audio/ogg": {}, "audio/midi": {}, "image/png": {}}},
            **FILE_RESPONSES,
            "404": _error("not this browser's song (nor a shared one), or no such part")}}},
    "/api/tracks/{id}/share": {"post": {
        "summary": "Put one of this browser's songs in the pool for the weekly album",
        "operationId": "shareTrack", "parameters": [_id_parameter("song")],
        "responses": {"200": _json_body(_ref("Message"), "shared"),
                      "404": _error("not one of this browser's songs")}}},
    "/api/tracks/{id}/link": {
        "post": {
            "summary": "Make (or keep) the public page of one of this browser's songs, "
                       "crediting the person's name or no name; anyone with its link can "
                       "play it until it is revoked or the person is forgotten",
            "operationId": "makeLink", "parameters": [_id_parameter("song")],
            "requestBody": {"required": False,
                            "content": {JSON: {"schema": _ref("LinkRequest")}}},
            "responses": {"200": _json_body(_ref("Track"), "the song, with its link"),
                          "400": UNREADABLE | {"description": "credit is not name or "
                                                              "anonymous, or the body is not "
                                                              "a JSON object"},
                          "404": _error("not one of this browser's songs"),
                          "415": _error("the body is not JSON")}},
        "delete": {
            "summary": "Revoke a song's public page: its link answers 404 from now on",
            "operationId": "revokeLink", "parameters": [_id_parameter("song")],
            "responses": {"200": _json_body(_ref("Message"), "revoked"),
                          "404": _error("not one of this browser's songs, or it has no "
                                        "link")}}},
    "/api/tracks/{id}/{action}": {"post": {
        "summary": "Another melody for a song (action another), its piano version (action "
                   "piano), or the same song again in the other form, same melody and band "
                   "(action short: the short version of a full song; full: the full song of "
                   "a short one)",
        "operationId": "trackAction",
        "parameters": [_id_parameter("song"),
                       _enum_parameter("action", ["another", "piano", *FORMS])],
        "responses": STARTED_JOB}},
    "/api/album": {"get": {
        "summary": "A weekly community album (the newest, or the week asked for): its "
                   "tracklist with chapters and credits, and its files. Public: no cookie needed",
        "operationId": "album",
        "parameters": [{"name": "week", "in": "query", "required": False,
                        "description": "an ISO week that exists (2021-W53 does not); empty "
                                       "or left out: the newest album",
                        "schema": {"type": "string", "pattern": WEEK_PATTERN},
                        "examples": {"week": {"value": "2026-W47"}}}],
        "responses": {"200": _json_body(_ref("Album"), "the album"),
                      "400": _error("week is not a week written as YYYY-Www"),
                      "404": _error("there is no album (of that week) yet")}}},
    "/api/albums/{week}/{part}": {"get": {
        "summary": "A file of a week's album: audio (OGG/Opus with chapters), mp3 or cover "
                   "(PNG), named singsong-album-WEEK.ogg|mp3|png. Public: no cookie needed",
        "operationId": "getAlbumFile",
        "parameters": [{"name": "week", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": WEEK_PATTERN}},
                       _enum_parameter("part", ["audio", "mp3", "cover"]), DOWNLOAD, RANGE],
        "responses": {
            "200": {"description": "the file, with a download filename", "content": {
                "audio/ogg": {}, "audio/mpeg": {}, "image/png": {}}},
            **FILE_RESPONSES,
            "404": _error("no album of that week, or it has no such file")}}},
    "/api/name": {
        "get": {"summary": "The name the album credits this browser's person by",
                "operationId": "getName",
                "responses": {"200": _json_body(_ref("Name"), "the name; empty for none yet")}},
        "post": {"summary": "Set the name the album and the song pages credit this browser's "
                            "person by (kept with their songs; /api/forget deletes it). "
                            "Without a name they say 'a SingSong singer'",
                 "operationId": "setName",
                 "requestBody": {"required": True, "content": {JSON: {"schema": {
                     "type": "object", "properties": {"name": {"type": "string",
                                                               "maxLength": NAME_LIMIT}}}}}},
                 "responses": {"200": _json_body(_ref("Name"), "the name as it is now kept"),
                               "400": UNREADABLE | {"description": "the name is longer than "
                                                                   f"{NAME_LIMIT} characters, "
                                                                   "or the body is not a JSON "
                                                                   "object"},
                               "415": _error("the body is not JSON")}}},
    "/api/together": {"post": {
        "summary": "Start a group song in this browser's name (or show the one it has open): "
                   "a link others open to add their voice note, for 5 minutes",
        "operationId": "startTogether",
        "responses": {"201": _json_body(_ref("Gathering"), "the group song and its link")}}},
    "/api/together/{token}": {"get": {
        "summary": "A group song by its link: who joined, when it closes, and its song once "
                   "it is made", "operationId": "getTogether", "parameters": [GATHERING],
        "responses": {"200": _json_body(_ref("Gathering"), "the group song"),
                      "404": NO_GATHERING}}},
    "/api/together/{token}/voices": {"post": {
        "summary": "Join a group song with a voice note (joining is consent for this song "
                   "only; a second note replaces this browser's first)",
        "operationId": "joinTogether", "parameters": [GATHERING],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["audio"],
                "properties": {"audio": {"type": "string", "contentMediaType": "audio/*",
                                         "description": "the voice note"}}}}}},
        "responses": {"202": _json_body(_ref("Gathering"), "joined"),
                      "400": _error("no voice note in the form, or the body is malformed"),
                      "404": NO_GATHERING, "409": _error("the group song has closed"),
                      "413": TOO_LARGE, "415": NOT_JSON_OR_FORM}}},
    "/api/together/{token}/close": {"post": {
        "summary": "Close a group song now and make it (its starter only)",
        "operationId": "closeTogether", "parameters": [GATHERING],
        "responses": {"202": _json_body(_ref("Gathering"), "closed: the song is being made, "
                                        "or it was dropped with fewer than two voices"),
                      "403": _error("only its starter can close it early (or the request "
                                    "came from another site's page)"),
                      "404": NO_GATHERING, "409": _error("the group song has closed")}}},
    "/api/together/{token}/song": {"get": {
        "summary": "The group song's audio (OGG/Opus), for anyone with its link",
        "operationId": "getTogetherSong", "parameters": [GATHERING, RANGE],
        "responses": {"200": {"description": "the song", "content": {"audio/ogg": {}}},
                      **FILE_RESPONSES,
                      "404": _error("not made yet, or gone")}}},
    "/api/forget": {"post": {
        "summary": "Delete every song, clip, link and setting of this browser's person",
        "operationId": "forget",
        "responses": {"200": _json_body(_ref("Message"), "forgotten; the cookie is cleared")}}},
}
PUBLIC = ("openapi", "options", "album", "getAlbumFile")  # need no browser cookie
BODY_METHODS = ("post", "delete")
BROWSER_COOKIE = {"type": "apiKey", "in": "cookie", "name": "singsong_id",
                  "description": "the browser's random id (32 hex digits), which its jobs and "
                                 "songs belong to: the server sets it on the first answer; "
                                 "without it, a request is a new person's"}
WEB_TOKEN = {"type": "http", "scheme": "bearer",
             "description": "SINGSONG_WEB_TOKEN, when the server has one (served beyond its "
                            "machine)"}
TOKEN_COOKIE = {"type": "apiKey", "in": "cookie", "name": "singsong_token",
                "description": "the web token, kept by a page opened as /?token=TOKEN"}


def openapi_document(*, token_required: bool = False) -> dict[str, Any]:
    """The whole document; every route under /api has its path here. With a web token
    (SINGSONG_WEB_TOKEN) every operation but this document's asks for it."""
    paths = copy.deepcopy(PATHS)
    for operations in paths.values():
        for method, operation in operations.items():
            _add_common_answers(method, operation, token_required)
    schemes = {"browserCookie": BROWSER_COOKIE}
    if token_required:
        schemes |= {"webToken": WEB_TOKEN, "tokenCookie": TOKEN_COOKIE}
    return {
        "openapi": "3.1.0",
        "info": {"title": "SingSong web API", "version": "1",
                 "description": "Turn a voice clip or lyrics into a song. Each browser is one "
                                "person, known by the HttpOnly cookie singsong_id; failures "
                                "answer {\"error\": sentence}; a method an address does not "
                                "take answers 405 with Allow."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": schemes},
    }


def _add_common_answers(method: str, operation: dict[str, Any], token_required: bool) -> None:
    """What any operation may answer besides its own statuses, and who it asks to be."""
    responses = operation["responses"]
    if operation["operationId"] == "openapi":
        operation["security"] = [{}]
        return
    identity: dict[str, list[str]] = (
        {} if operation["operationId"] in PUBLIC else {"browserCookie": []})
    if token_required:
        responses["401"] = UNAUTHORIZED
        operation["security"] = [{"webToken": [], **identity}, {"tokenCookie": [], **identity}]
    else:
        operation["security"] = [identity, {}] if identity else [{}]  # or a new person
    if method in BODY_METHODS:
        responses.setdefault("403", ANOTHER_SITE)
        responses.setdefault("413", TOO_LARGE)
    responses.setdefault("503", AWAY)
    responses.setdefault("500", OUR_FAULT)
