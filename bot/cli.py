"""The `singsong` command (the contract is in DESIGN.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from bot.errors import BotError, Mistake, TooLarge
from bot.logs import setup_logging
from engine.errors import InvalidRequest, ToolMissing
from engine.theory import Key, parse_key

log = logging.getLogger("singsong")
EXTENSION_ALIASES = {"midi": "mid", "oga": "ogg", "opus": "ogg"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def _key(text: str) -> Key:
    try:
        return parse_key(text)
    except InvalidRequest as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _int_between(low: int, high: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{what} must be a whole number (got {text!r})") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high} "
                                             f"(got {value})")
        return value
    return parse


def _tempo(text: str) -> float:
    from engine.melody.compose import MAX_TEMPO_BPM, MIN_TEMPO_BPM

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"tempo must be a number of BPM (got {text!r})") from None
    if not MIN_TEMPO_BPM <= value <= MAX_TEMPO_BPM:
        raise argparse.ArgumentTypeError(f"tempo must be between {MIN_TEMPO_BPM:.0f} and "
                                         f"{MAX_TEMPO_BPM:.0f} BPM (got {value:g})")
    return value


def build_parser() -> argparse.ArgumentParser:
    from engine.melody.compose import MAX_BARS

    parser = _Parser(prog="singsong", description="SingSong: voice notes into songs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    melody = commands.add_parser("melody", help="compose a new melody",
                                 description="Compose a new pop melody. The output format "
                                 "follows OUT's extension: .mid (melody, chords, bass), "
                                 ".ogg/.mp3/.wav (rendered), .png (piano roll).")
    melody.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                        help="file to write; with --count, a folder for the MIDI files")
    melody.add_argument("--seed", type=_int_between(0, 2**63 - 1, "seed"), default=None,
                        help="same seed and options, same melody (default: a random seed)")
    melody.add_argument("--key", type=_key, default=None, help="e.g. C, F#m, Bb minor "
                        "(default: chosen by the seed)")
    melody.add_argument("--bars", type=_int_between(1, MAX_BARS, "bars"), default=8)
    melody.add_argument("--tempo", type=_tempo, default=110.0, metavar="BPM")
    melody.add_argument("--count", type=_int_between(1, 10000, "count"), default=None,
                        help="write this many melodies (seeds seed..seed+N-1) as MIDI "
                        "files into the folder OUT")
    melody.add_argument("--json", action="store_true", help="print what was made as JSON")
    melody.set_defaults(run=run_melody)

    from engine.arrange import DEFAULT_STYLE, STYLES
    from engine.form import DEFAULT_FORM, FORMS

    sing = commands.add_parser("sing", help="sing a voice note on a new melody",
                               description="Sing a voice note (any audio ffmpeg reads) on a "
                               "new melody over a band. OUT: .ogg (Opus), .mp3 or .wav for the "
                               "song, .png for the picture of the voice against the melody.")
    sing.add_argument("input", type=Path, metavar="INPUT", help="the voice note")
    lyrics = commands.add_parser("lyrics", help="sing typed lyrics on a new melody",
                                 description="Speak the lyrics with espeak-ng in the language "
                                 "they are written in, then sing them like a voice note (at "
                                 "most 300 characters).")
    lyrics.add_argument("text", metavar="TEXT", help="the words to sing")
    lyrics.add_argument("--lang", default=None, metavar="CODE",
                        help="the language to sing in when the words do not tell (e.g. es, "
                        "pt-br; default: told by the words, else English)")
    piano = commands.add_parser("piano", help="turn a hummed or sung clip into piano",
                                description="Transcribe a hummed or sung clip to piano notes. "
                                "OUT: .mid, .ogg/.mp3/.wav (played on a piano, as long as the "
                                "clip) or .png (piano roll).")
    piano.add_argument("input", type=Path, metavar="INPUT", help="the hummed or sung clip")
    piano.add_argument("-o", "--output", required=True, type=Path, metavar="OUT")
    piano.add_argument("--quantize", action="store_true",
                       help="snap the notes to a 16th grid of the detected tempo (default: "
                       "keep the singer's timing)")
    piano.add_argument("--json", action="store_true", help="print the notes as JSON")
    piano.set_defaults(run=run_piano)

    serve = commands.add_parser("serve", help="run the bot: the web chat on "
                                "SINGSONG_WEB_HOST:SINGSONG_WEB_PORT (default "
                                "127.0.0.1:8080) and every adapter whose token is set")
    serve.set_defaults(run=run_serve, json=False)

    curate = commands.add_parser("curate", help="the nightly curation, once: measure the "
                                 "songs not measured yet and score this week's shared ones")
    curate.add_argument("--json", action="store_true", help="print what was done as JSON")
    curate.set_defaults(run=run_curate)
    album = commands.add_parser("album", help="the weekly community album")
    album_commands = album.add_subparsers(dest="album_command", required=True,
                                          parser_class=_Parser)
    build = album_commands.add_parser("build", help="make a week's album (once: a week that "
                                      "has its album keeps it)")
    build.add_argument("--week", default=None, metavar="YYYY-Www",
                       help="the ISO week (default: the week that ended last)")
    build.add_argument("--json", action="store_true", help="print the album as JSON")
    build.set_defaults(run=run_album_build)

    database = commands.add_parser("db", help="the database")
    database_commands = database.add_subparsers(dest="db_command", required=True,
                                                parser_class=_Parser)
    upgrade = database_commands.add_parser("upgrade", help="bring the schema up to date")
    upgrade.set_defaults(run=run_db_upgrade, json=False)
    worker = commands.add_parser("worker", help="run jobs from Redis (scale-out mode, with "
                                 "SINGSONG_REDIS_URL set)")
    worker.set_defaults(run=run_worker, json=False)

    for sub, run in ((sing, run_sing), (lyrics, run_lyrics)):
        sub.add_argument("-o", "--output", required=True, type=Path, metavar="OUT")
        sub.add_argument("--seed", type=_int_between(0, 2**63 - 1, "seed"), default=None,
                         help="same seed and input, same song (default: random)")
        sub.add_argument("--style", choices=sorted(STYLES), default=DEFAULT_STYLE,
                         help=f"the band (default {DEFAULT_STYLE}; robot also tunes hard)")
        sub.add_argument("--form", choices=FORMS, default=DEFAULT_FORM,
                         help="full: intro, verse, a chorus of your own words sung twice "
                         "with a harmony, an ending; short: the words sung once (default "
                         f"{DEFAULT_FORM})")
        sub.add_argument("--melody-out", type=Path, metavar="M.mid",
                         help="write the notes the voice was put on as a one-track MIDI file")
        sub.add_argument("--stems", type=Path, metavar="DIR", help="write vocal.wav, "
                         "backing.wav, harmony.wav (a full song's second voice) and "
                         "pitch.png into this folder")
        sub.add_argument("--json", action="store_true", help="print what was made as JSON")
        sub.set_defaults(run=run)
    return parser


def _format_of(path: Path, formats: tuple[str, ...]) -> str:
    ext = path.suffix.lower().lstrip(".")
    ext = EXTENSION_ALIASES.get(ext, ext)
    if ext not in formats:
        raise Mistake(f"cannot tell what to write from the name {str(path)!r}: "
                        f"end it in .{', .'.join(formats)}")
    return ext


def _make_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise Mistake(f"{str(folder)!r} must be a folder, and it is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise Mistake(f"cannot create the folder {str(folder)!r}: {error.strerror}") from None
    _check_writable_folder(folder)


def _check_writable_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise Mistake(f"cannot write into {str(folder)!r}: it is not an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise Mistake(f"cannot write into {str(folder)!r}: permission denied")


def write_file(path: Path, data: bytes) -> None:
    """Write atomically: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise Mistake(f"cannot write {str(path)!r}: {error.strerror or error}") from None


def run_melody(args: argparse.Namespace) -> dict[str, Any]:
    from engine.pipeline import MELODY_FORMATS, melody
    from engine.timing import StageTimer

    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    out: Path = args.output
    timer = StageTimer()
    if args.count is None:
        fmt = _format_of(out, MELODY_FORMATS)
        _check_writable_folder(out.parent)
        piece = melody(seed=seed, key=args.key, bars=args.bars, tempo_bpm=args.tempo,
                       formats=(fmt,))
        with timer.stage("write"):
            write_file(out, piece.files[fmt])
        log.info("wrote %s (%s, seed %d)", out, piece.melody.key.name, seed)
        return {"path": str(out), "paths": [str(out)], "format": fmt, **piece.summary(),
                "timings_s": {**piece.timings_s, **timer.report()}}
    if out.exists() and not out.is_dir():
        raise Mistake(f"with --count, OUT must be a folder; {str(out)!r} is a file")
    _make_folder(out)
    made = []
    for offset in range(args.count):
        piece = melody(seed=seed + offset, key=args.key, bars=args.bars, tempo_bpm=args.tempo,
                       formats=("mid",))
        path = out / f"{seed + offset}.mid"
        with timer.stage("write"):
            write_file(path, piece.files["mid"])
        made.append({"path": str(path), **piece.summary()})
    return {"paths": [m["path"] for m in made], "melodies": made, "timings_s": timer.report()}


def _read_input(source: Path) -> bytes:
    """The input file's bytes, refusing a missing file or one over MAX_INPUT_BYTES."""
    from engine.audio import MAX_INPUT_BYTES  # numpy and scipy: only for commands with audio

    if not source.is_file():
        raise Mistake(f"cannot read {str(source)!r}: no such file")
    try:
        size = source.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise TooLarge(f"{str(source)!r} is {size / 2**20:.0f} MB; the limit is "
                           f"{MAX_INPUT_BYTES / 2**20:.0f} MB")
        return source.read_bytes()
    except OSError as error:
        raise Mistake(f"cannot read {str(source)!r}: {error.strerror}") from None


def _say_if_cut(summary: dict[str, Any], verb: str) -> None:
    from engine.form import MAX_SONG_S

    if summary["input_truncated"]:
        print(f"note: the clip is longer than a minute; only its first minute was {verb}",
              file=sys.stderr)
    if summary.get("syllables_sung", 0) < summary.get("syllables", 0):
        print(f"note: a song stays under {MAX_SONG_S:.0f} s; the clip's first "
              f"{summary['input_sung_s']:.0f} s were {verb}", file=sys.stderr)


def run_piano(args: argparse.Namespace) -> dict[str, Any]:
    from engine.pipeline import PIANO_FORMATS, piano
    from engine.timing import StageTimer

    out: Path = args.output
    fmt = _format_of(out, PIANO_FORMATS)
    _check_writable_folder(out.parent)
    result = piano(_read_input(args.input), quantize=args.quantize, formats=(fmt,))
    _say_if_cut(result.summary, "played")
    timer = StageTimer()
    with timer.stage("write"):
        write_file(out, result.files[fmt])
    return {"path": str(out), "paths": [str(out)], "format": fmt, **result.summary,
            "timings_s": {**result.timings_s, "write": timer.report()["write"]}}


def run_sing(args: argparse.Namespace) -> dict[str, Any]:
    from engine.pipeline import sing

    data = _read_input(args.input)
    return _write_song(args, lambda fmt, seed, extras: sing(
        data, seed=seed, style=args.style, form=args.form, audio_format=fmt, extras=extras))


def run_lyrics(args: argparse.Namespace) -> dict[str, Any]:
    from engine.pipeline import lyrics

    return _write_song(args, lambda fmt, seed, extras: lyrics(
        args.text, seed=seed, style=args.style, form=args.form, language=args.lang,
        audio_format=fmt, extras=extras))


def _write_song(args: argparse.Namespace, make: Any) -> dict[str, Any]:
    from engine.pipeline import SONG_FORMATS
    from engine.timing import StageTimer

    out: Path = args.output
    fmt = _format_of(out, SONG_FORMATS)
    folders = [out.parent]
    if args.melody_out is not None:
        _format_of(args.melody_out, ("mid",))
        folders.append(args.melody_out.parent)
    for folder in folders:
        _check_writable_folder(folder)
    if args.stems is not None:
        _make_folder(args.stems)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    song = make("wav" if fmt == "png" else fmt, seed, fmt == "png" or args.stems is not None)
    _say_if_cut(song.summary, "sung")
    timer = StageTimer()
    written = []
    with timer.stage("write"):
        write_file(out, song.picture if fmt == "png" else song.audio)
        written.append(out)
        if args.melody_out is not None:
            write_file(args.melody_out, song.melody_midi)
            written.append(args.melody_out)
        if args.stems is not None:
            stems = [(f"{stem}.wav", song.stems[stem])
                     for stem in ("vocal", "backing", "harmony") if stem in song.stems]
            for name, data in (*stems, ("pitch.png", song.picture)):
                write_file(args.stems / name, data)
                written.append(args.stems / name)
    timings = {**song.timings_s, "write": timer.report()["write"]}
    return {"path": str(out), "paths": [str(p) for p in written], "format": fmt,
            **song.summary, "timings_s": timings}


def run_db_upgrade(args: argparse.Namespace) -> dict[str, Any]:
    async def nothing_more(*_: Any) -> dict[str, Any]:
        return {}

    _with_storage(nothing_more)  # it brings the schema up to date first
    print("singsong db: the schema is up to date", file=sys.stderr)
    return {}


def _with_storage(work: Any) -> dict[str, Any]:
    """Run `work(sessions, blobs, settings)` on the configured database, once its schema is
    up to date."""
    import asyncio

    from bot.config import load_settings
    from storage.blobs import BlobStore
    from storage.database import create_engine, migrate, session_factory

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> dict[str, Any]:
        engine = create_engine(settings.effective_database_url)
        try:
            await migrate(engine)
            result: dict[str, Any] = await work(session_factory(engine),
                                                BlobStore(settings.data_dir / "blobs"),
                                                settings)
            return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def run_curate(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import UTC, datetime

    from bot.scheduler import run_curation

    report = _with_storage(lambda sessions, blobs, settings: run_curation(
        sessions, blobs, datetime.now(UTC)))
    print(f"singsong curate: measured {report['measured']} songs ({report['failed']} "
          f"failed); {len(report['candidates'])} shared this week", file=sys.stderr)
    return report


def run_album_build(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import UTC, datetime

    from bot.scheduler import AlbumSettings, build_album
    from bot.weeks import last_week, week_bounds

    week = args.week or last_week(datetime.now(UTC))
    week_bounds(week)  # a bad week is the user's mistake, before anything opens
    report = _with_storage(lambda sessions, blobs, settings: build_album(
        sessions, blobs, week, AlbumSettings.of(settings)))
    if report["album_id"] is None:
        print(f"singsong album: no album for {week}: {report['candidates']} songs were "
              "shared that week that can go in one", file=sys.stderr)
    else:
        made = "made" if report["created"] else "already made"
        print(f"singsong album: {week} {made}: {len(report['tracks'])} songs, "
              f"{report['duration_s']:.0f} s", file=sys.stderr)
    return report


def run_serve(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from bot.config import load_settings
    from bot.service import serve

    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    settings = load_settings()
    if settings.web_is_public and settings.web_token is None:
        raise Mistake(f"SINGSONG_WEB_HOST={settings.web_host} serves the web chat beyond "
                        "this machine: set SINGSONG_WEB_TOKEN too (its API then asks for it)")
    try:
        asyncio.run(serve(settings))
    except OSError as error:
        raise Mistake(f"cannot serve on {settings.web_host}:{settings.web_port}: "
                        f"{error.strerror or error} (set SINGSONG_WEB_PORT to another "
                        "port)") from None
    return {}


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from bot.config import load_settings
    from bot.jobs import run_worker as work

    settings = load_settings()
    if not settings.redis_url:
        raise Mistake("a worker takes its jobs from Redis: set SINGSONG_REDIS_URL (the "
                        "embedded setup runs jobs inside `singsong serve`)")
    run_db_upgrade(args)
    asyncio.run(work(settings.redis_url, settings.effective_database_url,
                     str(settings.data_dir.resolve()), queue_name=settings.redis_queue))
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Plain lines, or one JSON object per line with SINGSONG_LOG_FORMAT=json.
    setup_logging(logging.INFO if args.verbose else logging.WARNING, sys.stderr)
    try:
        result = args.run(args)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        print(f"singsong {args.command}: SINGSONG_{where.upper()}: {problem['msg']}",
              file=sys.stderr)
        return 2
    # The command line's one mapping of refusals: a sentence on stderr and exit status 2
    # for the person's mistakes, 1 for a tool that is missing.
    except (BotError, InvalidRequest) as error:
        print(f"singsong {args.command}: {error}", file=sys.stderr)
        return 2
    except ToolMissing as error:
        print(f"singsong {args.command}: {error}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
