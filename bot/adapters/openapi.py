"""The web API described as an OpenAPI 3.1 document (served at /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from engine.form import DEFAULT_FORM, FORMS

JSON = "application/json"
FORM = {"enum": list(FORMS), "default": DEFAULT_FORM,
        "description": "(sing, lyrics) full: intro, verse, a chorus of the person's own words "
                       "sung twice with a harmony voice, an ending; short: the words sung once"}
LANGUAGE = {"type": "string", "examples": ["de-DE", "es", "pt-br"],
            "description": "(lyrics) the person's language setting (the page sends "
                           "navigator.language): the words are sung in the language they are "
                           "written in, and in this one when they do not tell"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json_body(_ref("Error"), description)


def _id_parameter(what: str) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "description": f"the {what}'s number",
            "schema": {"type": "integer", "minimum": 1}}


STARTED_JOB = {
    "202": {**_json_body(_ref("Job"), "the job is queued; poll its url until it is done"),
            "headers": {"Location": {"schema": {"type": "string"},
                                     "description": "the job's url"}}},
    "400": _error("the request cannot be made into a song (the error says why)"),
    "404": _error("not one of this browser's songs"),
    "429": {**_error("too many requests: try again later"),
            "headers": {"Retry-After": {"schema": {"type": "integer"},
                                        "description": "seconds to wait"}}},
    "503": {**_error("the database is away for longer than the request may wait: nothing "
                     "was made; send it again"),
            "headers": {"Retry-After": {"schema": {"type": "integer"},
                                        "description": "seconds to wait"}}},
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string",
                                       "description": "one sentence for the person"}}},
    "Message": {"type": "object", "required": ["message"],
                "properties": {"message": {"type": "string"},
                               "track_id": {"type": "integer"}}},
    "Track": {
        "type": "object",
        "required": ["id", "kind", "created_at", "duration_s", "key", "tempo_bpm", "shared",
                     "parts", "urls", "form", "sections", "language", "about"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": ["sing", "lyrics", "melody", "piano"]},
            "created_at": {"type": "string", "format": "date-time"},
            "duration_s": {"type": "number", "description": "seconds"},
            "key": {"type": ["string", "null"], "examples": ["A minor"]},
            "tempo_bpm": {"type": ["number", "null"], "description": "beats per minute"},
            "shared": {"type": "boolean", "description": "in the pool for the weekly album"},
            "parts": {"type": "array", "items": {"enum": ["audio", "midi", "picture"]}},
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
    "Job": {
        "type": "object",
        "required": ["id", "kind", "status", "error", "ahead", "track", "url"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": ["sing", "lyrics", "melody", "piano"]},
            "status": {"enum": ["queued", "running", "done", "failed"]},
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
            "kind": {"enum": ["sing", "lyrics", "melody", "piano"]},
            "audio": {"type": "string", "contentMediaType": "application/octet-stream",
                      "description": "the voice clip (sing, piano): any audio ffmpeg reads"},
            "text": {"type": "string", "description": "the lyrics (lyrics)"},
            "form": FORM,
            "language": LANGUAGE,
            "key": {"type": "string", "examples": ["A minor"], "description": "(melody)"},
            "style": {"type": "string", "examples": ["lofi"], "description": "(melody)"},
        },
    },
    "JobJson": {
        "type": "object", "required": ["kind"],
        "properties": {
            "kind": {"enum": ["lyrics", "melody"]},
            "text": {"type": "string"},
            "form": FORM,
            "language": LANGUAGE,
            "key": {"type": "string"},
            "style": {"type": "string"},
        },
    },
    "History": {"type": "object", "required": ["tracks"],
                "properties": {"tracks": {"type": "array", "items": _ref("Track"),
                                          "description": "newest first"}}},
    "Options": {
        "type": "object", "required": ["kinds", "styles", "keys", "forms", "max_clip_bytes"],
        "properties": {"kinds": {"type": "array", "items": {"type": "string"}},
                       "styles": {"type": "array", "items": {"type": "string"}},
                       "keys": {"type": "array", "items": {"type": "string"}},
                       "forms": {"type": "array", "items": {"type": "string"}},
                       "max_clip_bytes": {"type": "integer"}},
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
        "properties": {"name": {"type": "string", "examples": ["Alice"]},
                       "message": {"type": "string", "description": "what the chat says"}},
    },
    "Album": {
        "type": "object", "required": ["week", "duration_s", "tracks", "files", "page"],
        "properties": {
            "week": {"type": "string", "pattern": "^[0-9]{4}-W[0-9]{2}$",
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

PATHS: dict[str, Any] = {
    "/api/openapi.json": {"get": {
        "summary": "This document", "operationId": "openapi",
        "responses": {"200": {"description": "OpenAPI 3.1",
                              "content": {JSON: {"schema": {"type": "object"}}}}}}},
    "/api/options": {"get": {
        "summary": "What the page may offer: kinds of job, band styles, keys, song forms, "
                   "the clip limit",
        "operationId": "options",
        "responses": {"200": _json_body(_ref("Options"), "the choices")}}},
    "/api/jobs": {"post": {
        "summary": "Start a song from a clip or lyrics, a new melody, or a piano version",
        "operationId": "createJob",
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                        "description": "8 to 64 of A-Z a-z 0-9 _ -: a retry makes no second job",
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": _ref("JobForm")},
            JSON: {"schema": _ref("JobJson")}}},
        "responses": {**STARTED_JOB,
                      "413": _error("the clip is larger than the service takes")}}},
    "/api/jobs/{id}": {"get": {
        "summary": "A job of this browser's: its status, place in the queue and song",
        "operationId": "getJob", "parameters": [_id_parameter("job")],
        "responses": {"200": _json_body(_ref("Job"), "the job"),
                      "404": _error("not one of this browser's jobs")}}},
    "/api/history": {"get": {
        "summary": "This browser's songs, newest first", "operationId": "history",
        "responses": {"200": _json_body(_ref("History"), "the songs")}}},
    "/api/tracks/{id}/{part}": {"get": {
        "summary": "A file of a song: audio (OGG/Opus), midi or picture (PNG)",
        "operationId": "getTrackFile",
        "parameters": [_id_parameter("song"),
                       {"name": "part", "in": "path", "required": True,
                        "schema": {"enum": ["audio", "midi", "picture"]}},
                       {"name": "download", "in": "query", "required": False,
                        "description": "any value: as an attachment rather than inline",
                        "schema": {"type": "string"}},
                       {"name": "Range", "in": "header", "required": False,
                        "schema": {"type": "string"}, "examples": ["bytes=0-1023"]}],
        "responses": {
            "200": {"description": "the file, with a download filename", "content": {
                "audio/ogg": {}, "audio/midi": {}, "image/png": {}}},
            "206": {"description": "the byte range asked for"},
            "404": _error("not this browser's song (nor a shared one), or no such part")}}},
    "/api/tracks/{id}/share": {"post": {
        "summary": "Put one of this browser's songs in the pool for the weekly album",
        "operationId": "shareTrack", "parameters": [_id_parameter("song")],
        "responses": {"200": _json_body(_ref("Message"), "shared"),
                      "404": _error("not one of this browser's songs")}}},
    "/api/tracks/{id}/{action}": {"post": {
        "summary": "Another melody for a song (action another), its piano version (action "
                   "piano), or the same song again in the other form, same melody and band "
                   "(action short: the short version of a full song; full: the full song of "
                   "a short one)",
        "operationId": "trackAction",
        "parameters": [_id_parameter("song"),
                       {"name": "action", "in": "path", "required": True,
                        "schema": {"enum": ["another", "piano", *FORMS]}}],
        "responses": STARTED_JOB}},
    "/api/album": {"get": {
        "summary": "A weekly community album (the newest, or the week asked for): its "
                   "tracklist with chapters and credits, and its files. Public: no cookie needed",
        "operationId": "album",
        "parameters": [{"name": "week", "in": "query", "required": False,
                        "description": "an ISO week; without it, the newest album",
                        "schema": {"type": "string", "pattern": "^[0-9]{4}-W[0-9]{2}$"},
                        "examples": {"week": {"value": "2026-W47"}}}],
        "responses": {"200": _json_body(_ref("Album"), "the album"),
                      "400": _error("week is not a week written as YYYY-Www"),
                      "404": _error("there is no album (of that week) yet")}}},
    "/api/albums/{week}/{part}": {"get": {
        "summary": "A file of a week's album: audio (OGG/Opus with chapters), mp3 or cover "
                   "(PNG), named singsong-album-WEEK.ogg|mp3|png. Public: no cookie needed",
        "operationId": "getAlbumFile",
        "parameters": [{"name": "week", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]{4}-W[0-9]{2}$"}},
                       {"name": "part", "in": "path", "required": True,
                        "schema": {"enum": ["audio", "mp3", "cover"]}},
                       {"name": "download", "in": "query", "required": False,
                        "description": "any value: as an attachment rather than inline",
                        "schema": {"type": "string"}},
                       {"name": "Range", "in": "header", "required": False,
                        "schema": {"type": "string", "examples": ["bytes=0-1023"]}}],
        "responses": {
            "200": {"description": "the file, with a download filename", "content": {
                "audio/ogg": {}, "audio/mpeg": {}, "image/png": {}}},
            "206": {"description": "the byte range asked for"},
            "416": {"description": "the range is outside the file"},
            "404": _error("no album of that week, or it has no such file")}}},
    "/api/name": {
        "get": {"summary": "The name the album credits this browser's person by",
                "operationId": "getName",
                "responses": {"200": _json_body(_ref("Name"), "the name; empty for none yet")}},
        "post": {"summary": "Set the name the album credits this browser's person by (kept "
                            "with their songs; /api/forget deletes it). Without a name the "
                            "album says 'a SingSong singer'",
                 "operationId": "setName",
                 "requestBody": {"required": True, "content": {JSON: {"schema": {
                     "type": "object", "properties": {"name": {"type": "string",
                                                               "maxLength": 64}}}}}},
                 "responses": {"200": _json_body(_ref("Name"), "the name as it is now kept")}}},
    "/api/forget": {"post": {
        "summary": "Delete every song, clip and setting of this browser's person",
        "operationId": "forget",
        "responses": {"200": _json_body(_ref("Message"), "forgotten; the cookie is cleared")}}},
}


def openapi_document() -> dict[str, Any]:
    """The whole document; every route under /api has its path here."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "SingSong web API", "version": "1",
                 "description": "Turn a voice clip or lyrics into a song. Each browser is one "
                                "person, known by the HttpOnly cookie singsong_id; failures "
                                "answer {\"error\": sentence}."},
        "servers": [{"url": "/"}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }
