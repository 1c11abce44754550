"""What SingSong says: the fixed sentences, the reply to a finished job, and the small
readers and writers of words (a song number, a name, a minute) every command shares."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from bot.commands._base import has_part
from bot.commands._types import Button, FileOut, Reply
from bot.jobs import INTERNAL_ERROR
from bot.titles import credit, derived_title, new_title
from bot.together import Said, credits
from engine.arrange import STYLES
from engine.errors import InvalidRequest
from engine.form import DEFAULT_FORM, MAX_SONG_S
from engine.theory import parse_key
from storage.models import MAX_ID, Job, JobKind, JobStatus, Track

SONG_KINDS = (JobKind.SING, JobKind.LYRICS)  # the kinds that have a form and are sung in a language
CLIP_KINDS = (JobKind.SING, JobKind.PIANO)  # the kinds made from a clip the person sends
FORM_BUTTONS = {"full": "Full song", "short": "Short version"}  # a song offers the other one
PIANO_STAYS_OUT = ("Piano versions stay out of the community album: it is an album of songs. "
                   "Share the song itself with /share NUMBER (see /history).")
NAME_LIMIT = 64  # characters of a name for the credits
WORKING: dict[str, str] = {
    JobKind.SING: "Got it! Writing a melody for your voice...",
    JobKind.LYRICS: "Got it! Warming up my voice for your words...",
    JobKind.MELODY: "Composing a new melody...",
    JobKind.PIANO: "Listening for the notes...",
}
SOMETHING_WENT_WRONG = ("Sorry, something went wrong while making this one. Please send it "
                        "again in a moment.")
NOT_AUDIO = ("That file does not look like audio. Send a voice note, or an audio file "
             "(OGG, MP3, M4A, WAV, FLAC).")


def too_large(size_bytes: int, limit_bytes: int) -> Reply:
    """The answer to a file over the limit of the door it came through."""
    size_mb = math.ceil(size_bytes / 2**20 * 10) / 10  # never "20.0 MB, at most 20 MB"
    return Reply(f"That file is {size_mb:.1f} MB and I can take at most "
                 f"{limit_bytes / 2**20:g} MB. Send a shorter voice note (a minute at most "
                 "is plenty).")


@dataclass(frozen=True)
class SungAs:
    """How a song came out: its form, its sections and, for lyrics, the language it was sung
    in (the engine's summary, kept with the job as parameters["sung"])."""

    form: str
    sections: tuple[dict[str, Any], ...] = ()
    language: dict[str, str] | None = None
    sung_s: float | None = None  # a very long note: how much of it the song sings

    @classmethod
    def of(cls, job: Job) -> SungAs | None:
        """None for a melody or a piano job."""
        if job.kind not in SONG_KINDS:
            return None
        sung = job.parameters.get("sung") or {}
        return cls(str(sung.get("form") or job.parameters.get("form") or DEFAULT_FORM),
                   tuple(sung.get("sections") or ()), sung.get("language"), sung.get("sung_s"))

    def about(self) -> str:
        """'Verse, chorus x2. Sung in Spanish.': what a reply says of the song, briefly."""
        said = []
        if self.form == "full" and (parts := sung_parts(self.sections)):
            said.append(parts + ".")
        if self.language:
            name = self.language.get("name") or self.language.get("code") or ""
            mine = " (your language setting)" if self.language.get(
                "chosen_by") == "setting" else ""
            said.append(f"Sung in {name}{mine}.")
        if self.sung_s is not None:
            said.append(f"A song stays under {MAX_SONG_S:.0f} s: it sings your first "
                        f"{self.sung_s:.0f} s.")
        return " ".join(said)


def sung_parts(sections: tuple[dict[str, Any], ...]) -> str:
    """The sung sections in order, repeats counted: 'Verse, chorus x2' (the band's intro and
    ending go without saying)."""
    names = [str(s.get("name", "")) for s in sections
             if s.get("name") not in ("intro", "ending", None)]
    runs = [(name, len(list(run))) for name, run in itertools.groupby(names)]
    return capitalised(", ".join(name if count == 1 else f"{name} x{count}"
                                  for name, count in runs))


def finished_reply(kind: str, track: Track, audio: FileOut, midi: FileOut | None, *,
                   in_a_group: bool = False, sung: SungAs | None = None) -> Reply:
    """What a person gets for a finished job, with the buttons that fit it (a song offers its
    other form; in a group chat, a Like button for the others there). Its picture is a
    button: drawn when pressed, not with every job."""
    about = track_about(track)
    share = Button("Share to album", f"share:{track.id}")
    another = Button("Another melody", f"another:{track.id}")
    like = (Button("Like", f"like:{track.id}"),) if in_a_group else ()
    picture = (Button("Picture", f"picture:{track.id}"),) if has_part(track, "picture") else ()
    if kind == JobKind.MELODY:
        return Reply(f"A new melody ({about}): the audio and the MIDI file; its piano roll "
                     "under Picture.", voice=audio, files=tuple(f for f in (midi,) if f),
                     buttons=(another, *picture, share, *like))
    if kind == JobKind.PIANO:
        return Reply(f"Your clip on the piano ({about}), with the notes as MIDI.",
                     voice=audio, files=tuple(f for f in (midi,) if f), buttons=picture)
    buttons = [another]
    if sung is not None:
        other = next(form for form in FORM_BUTTONS if form != sung.form)
        buttons.append(Button(FORM_BUTTONS[other], f"{other}:{track.id}"))
    if kind == JobKind.SING:
        buttons.append(Button("Piano version", f"piano:{track.id}"))
    if midi is not None:
        buttons.append(Button("MIDI file", f"midi:{track.id}"))
    buttons += [*picture, share, *like]
    text = f"Here is your song #{track.id} ({about})."
    if sung is not None and (said := sung.about()):
        text += "\n" + said
    return Reply(text, voice=audio, buttons=tuple(buttons))


def group_reply(job: Job, track: Track, audio: FileOut, midi: FileOut | None) -> Reply:
    """A group song, crediting every voice (and saying whose note was left out, and why);
    its Share button asks each voice's yes."""
    about = track_about(track)
    voices = (job.parameters.get("sung") or {}).get("voices") or [
        {"name": voice["name"], "sung": True} for voice in job.parameters.get("voices", [])]
    sung = [voice["name"] for voice in voices if voice.get("sung")]
    lines = [f"Your group song #{track.id} ({about}), sung by {credits(sung)}."]
    lines += [f"{capitalised(credit(voice['name']))}'s note was left out: "
              f"{sentence(str(voice.get('reason') or 'it could not be sung')).lower()}"
              for voice in voices if not voice.get("sung")]
    buttons = [Button("Share to album", f"share:{track.id}")]
    if has_part(track, "picture"):
        buttons.insert(0, Button("Picture", f"picture:{track.id}"))
    if midi is not None:
        buttons.insert(0, Button("MIDI file", f"midi:{track.id}"))
    return Reply("\n".join(lines), voice=audio, buttons=tuple(buttons))


def said_reply(said: Said) -> Reply:
    """What the together module said, as a Reply: an invitation carries the button that
    closes it."""
    buttons = (Button("Close now and make the song", "together:done"),) if (
        said.gathering_id is not None) else ()
    return Reply(said.text, buttons=buttons, gathering_id=said.gathering_id,
                 job_id=said.job_id, job_kind=JobKind.GROUP if said.job_id is not None else None)


def melody_options(text: str) -> dict[str, Any]:
    """'/melody A minor lofi' -> {"key": "A minor", "style": "lofi"}; raises InvalidRequest."""
    words = text.split()
    options: dict[str, Any] = {}
    if words and words[-1].lower() in STYLES:
        options["style"] = words.pop().lower()
    if words:
        options["key"] = parse_key(" ".join(words)).name
    return options


def error_for_person(job: Job) -> str | None:
    if job.status != JobStatus.FAILED:
        return None
    if not job.error or job.error.startswith(INTERNAL_ERROR):
        return SOMETHING_WENT_WRONG
    return sentence(job.error)


def title_of(job: Job) -> str:
    """The name of what a job made (a job from before names were kept gets one now)."""
    return str(job.parameters.get("title") or new_title(job.kind, job.parameters))


def made_from(verb: str, track_id: int, job: Job) -> dict[str, Any]:
    """What a job made by a button on a track keeps of it: which button, which track and
    its name; and its own name, when it is not a new song (the other form, the piano)."""
    source_title = title_of(job)
    made = {"made_by": verb, "from_track": track_id, "from_title": source_title}
    title = derived_title(verb, source_title)
    return {**made, "title": title} if title else made


def band(style: str) -> dict[str, str]:
    """{"style": name} for a band asked for with one song; {} for the person's own."""
    name = style.strip().lower()
    if not name:
        return {}
    if name not in STYLES:
        raise InvalidRequest(f"I know these styles: {', '.join(STYLES)}")
    return {"style": name}


def is_piano_version(track: Track) -> bool:
    """Whether a track is a clip played on the piano: the only kind without a key (songs and
    melodies are composed in one). Piano versions stay out of the album (see
    bot/README.md)."""
    return track.key is None


def clean_name(text: str) -> str:
    """A name as the album prints it: printable characters, single spaces, at most
    NAME_LIMIT characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:NAME_LIMIT].strip()


def track_about(track: Track) -> str:
    """'A minor, 96 BPM, 24 s': a song's key, tempo and length, as replies say them."""
    return ", ".join(part for part in (
        track.key, f"{track.tempo_bpm:.0f} BPM" if track.tempo_bpm else None,
        f"{track.duration_s:.0f} s") if part)


def minutes(seconds: float) -> str:
    """'1:05' for 65 s."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def track_number(text: str) -> int | None:
    """'#12' or '12' -> 12; None for anything that cannot be a row id (the databases' ids
    are 32-bit: a bigger number is no song, not an error)."""
    text = text.strip().lstrip("#")
    if not (text.isascii() and text.isdigit() and len(text) < 12):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def sentence(text: str) -> str:
    """An engine message ('the clip is ...') as a sentence for a chat."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
