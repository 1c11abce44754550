"""The jobs, each a plain function from a request to finished files and a summary."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import (
    arrange,
    audio,
    denoise,
    notes,
    picture,
    pitch,
    retune,
    singer,
    transcribe,
    vocal_chain,
    vocals,
)
from engine import form as song_form
from engine.errors import InvalidRequest
from engine.melody.compose import Melody, MelodyNote, compose, compose_phrases
from engine.melody.model import load_model
from engine.melody.tokens import STEPS_PER_BAR
from engine.retune import SungNote
from engine.theory import Key, chord_name
from engine.timing import StageTimer

if TYPE_CHECKING:  # engine.group builds on this module's helpers: it is imported when used
    from engine.group import GroupSong

MELODY_FORMATS = ("mid", *audio.AUDIO_FORMATS, "png")


@dataclass(frozen=True)
class MelodyPiece:
    """A composed melody and the files made from it, by format ("mid", "ogg", "png", ...)."""

    melody: Melody
    files: dict[str, bytes]
    timings_s: dict[str, float] = field(default_factory=dict)
    # The audio's length (the band and the piano ring on past the last note); None when no
    # audio was made.
    audio_duration_s: float | None = None

    def summary(self) -> dict[str, Any]:
        return melody_summary(self.melody)


def melody_summary(melody: Melody) -> dict[str, Any]:
    """What a melody is, as plain JSON-ready values.

    Parameters
    ----------
    melody : Melody

    Returns
    -------
    summary : dict of str -> Any
        seed, key (its name), tempo_bpm, bars, duration_s (s, to 1 ms), notes (notes_json) and
        chords (name, start_s and end_s in s, to 0.1 ms).
    """
    return {
        "seed": melody.seed,
        "key": melody.key.name,
        "tempo_bpm": melody.tempo_bpm,
        "bars": melody.n_bars,
        "duration_s": round(melody.duration_s, 3),
        "notes": notes_json((n.pitch, n.start_s, n.end_s, n.velocity) for n in melody.notes),
        "chords": [
            {"name": chord_name(c.root, c.quality), "start_s": round(c.start_s, 4),
             "end_s": round(c.end_s, 4)}
            for c in melody.chords
        ],
    }


def notes_json(notes: Iterable[arrange.NoteTuple]) -> list[dict[str, Any]]:
    """Notes as JSON-ready dicts (times rounded to 0.1 ms).

    Parameters
    ----------
    notes : iterable of (int, float, float, int)
        (MIDI note number, start in s, end in s, velocity 0..127) per note.

    Returns
    -------
    notes : list of dict
        {"pitch", "start_s", "end_s", "velocity"} per note, in the order given.
    """
    return [{"pitch": p, "start_s": round(a, 4), "end_s": round(b, 4), "velocity": v}
            for p, a, b, v in notes]


def _audio_files(formats: Collection[str], render: Callable[[], np.ndarray],
                 timer: StageTimer) -> dict[str, bytes]:
    """Render once (only when an audio format is asked for) and encode to each format, each
    file's decoded true peak at most audio.DELIVERED_CEILING_DBTP (encode_true_peak)."""
    wanted = [f for f in formats if f in audio.AUDIO_FORMATS]
    if not wanted:
        return {}
    with timer.stage("render"):
        samples = render()
    with timer.stage("encode"):
        return {fmt: audio.encode_true_peak(samples, arrange.SAMPLE_RATE, fmt)[0]
                for fmt in wanted}


def _with_headroom(samples: np.ndarray) -> np.ndarray:
    """A render scaled so its true peak sits at audio.MASTER_CEILING_DBTP, as a song's
    master does: the headroom the encoders' overshoot needs, so that one encoding keeps the
    file under audio.DELIVERED_CEILING_DBTP (peak-normalised to -1 dBFS, a melody had to be
    encoded again in 4 of 6 seeds). Silence stays silent."""
    peak_dbtp = audio.true_peak_dbtp(samples, arrange.SAMPLE_RATE)
    if not np.isfinite(peak_dbtp):
        return samples
    scaled: np.ndarray = samples * np.float32(10 ** ((audio.MASTER_CEILING_DBTP - peak_dbtp) / 20))
    return scaled


def check_formats(formats: Collection[str], allowed: Collection[str]) -> None:
    """Refuse a format outside `allowed`.

    Parameters
    ----------
    formats : collection of str
        The formats asked for ("ogg", "mp3", "wav", "mid", "png", ...).
    allowed : collection of str
        The formats this kind of result comes in.

    Raises
    ------
    InvalidRequest
        Naming the first unknown format and the allowed ones.
    """
    unknown = set(formats) - set(allowed)
    if unknown:
        raise InvalidRequest(f"unsupported format {sorted(unknown)[0]!r}: "
                             f"use {', '.join(allowed)}")


def melody(
    *,
    seed: int,
    key: Key | None = None,
    bars: int = 8,
    tempo_bpm: float = 110.0,
    formats: Collection[str] = ("ogg", "mid", "png"),
    style: str | None = None,
    title: str | None = None,
) -> MelodyPiece:
    """Compose a melody and make the requested files.

    MIDI (melody, chords and bass, or with `style` that style's band: chords, bass, drums),
    audio rendered through FluidSynth (piano melody over the accompaniment) with its true peak
    at audio.MASTER_CEILING_DBTP before encoding, a piano-roll PNG (headed `title`, when
    given).

    Parameters
    ----------
    seed : int
        Same seed and options, same melody.
    key : Key or None
        None picks one from the seed.
    bars : int in 1..64
        Length in 4/4 bars.
    tempo_bpm : float in 40..240
        Quarter notes per minute.
    formats : collection of str in MELODY_FORMATS ("mid", "ogg", "mp3", "wav", "png")
        The files to make.
    style : str or None
        A band style (arrange.STYLES) to play under the melody instead of chords and bass.
    title : str or None
        The piano roll's heading.

    Returns
    -------
    piece : MelodyPiece
        The melody, the files by format, the stages' timings (s) and the audio's length (s;
        None when no audio was made).

    Raises
    ------
    InvalidRequest
        For an unknown format or style, or options the composer cannot honour.
    ToolMissing
        When audio is asked for and no soundfont is installed.
    """
    check_formats(formats, MELODY_FORMATS)
    band = arrange.style_named(style) if style else None
    timer = StageTimer()
    with timer.stage("load_model"):
        load_model()
    with timer.stage("compose"):
        tune = compose(seed=seed, key=key, bars=bars, tempo_bpm=tempo_bpm)
    files: dict[str, bytes] = {}
    midi = arrange.melody_midi(tune, accompaniment=band is None)
    if band is not None:
        midi.instruments.extend(arrange.backing_midi(tune, band, intro_bars=0).instruments)
    if "mid" in formats:
        with timer.stage("midi"):
            files["mid"] = arrange.midi_bytes(midi)
    rendered: list[np.ndarray] = []

    def render() -> np.ndarray:
        rendered.append(_with_headroom(arrange.render(midi)))
        return rendered[0]

    files.update(_audio_files(formats, render, timer))
    if "png" in formats:
        with timer.stage("picture"):
            files["png"] = picture.piano_roll_png(tune, title)
    return MelodyPiece(melody=tune, files=files, timings_s=timer.report(),
                       audio_duration_s=len(rendered[0]) / arrange.SAMPLE_RATE
                       if rendered else None)


# --- Voice note to song -----------------------------------------------------------------

SONG_FORMATS = (*audio.AUDIO_FORMATS, "png")  # a song, or the picture of the voice
VOICE_RATE = 22050
SUNG_VELOCITY = 96
INTRO_BARS = 1
VOCAL_LUFS, BACKING_LUFS, MASTER_LUFS = -17.5, -22.0, -14.0  # the voice 4.5 LU in front
BALANCE_TOLERANCE_LU, BALANCE_PASSES = 0.5, 3
HARMONY_BELOW_DB = 6.0  # the second voice's gain under the lead's (its level is not measured)
VERSE_BUDGET_SHARE = 0.9
CHECK_HOP_S = 0.03  # f0 frames for the sung voice's pitch accuracy and its picture
NO_VOICE = ("I could not hear a voice in this clip: send a voice note of a few words or more, "
            "spoken or sung, without much noise around it")
MIN_VOICE_S = 0.5
TOO_SHORT = "the clip is only {:.2f} s long: send at least half a second of voice (a few words)"
TOO_FEW_SYLLABLES = ("I heard only one syllable: say or sing a few words (at least two "
                     "syllables) and I will turn them into a song")


@dataclass(frozen=True)
class Song:
    """A finished song: the mix (encoded), what the voice sings, stems, picture, summary."""

    audio: bytes
    audio_format: str
    melody: Melody  # the composer's melody: key, tempo, chords and its rhythm
    sung: tuple[SungNote, ...]  # the notes the voice was put on, on the song's time line
    melody_midi: bytes  # one track, 'melody', holding exactly `sung`
    picture: bytes  # PNG: the voice's sung pitch against the melody (extras), else b""
    picture_card: bytes  # what the picture shows, as JSON: picture.draw(it) is the picture
    summary: dict[str, Any]
    timings_s: dict[str, float]
    time_map: retune.TimeMap  # where each instant of the input is sung on the song's time line
    samples: np.ndarray = field(repr=False)  # the mix, mono float at arrange.SAMPLE_RATE
    stem_samples: Stems | None = field(default=None, repr=False, compare=False)  # extras

    @cached_property
    def stems(self) -> dict[str, bytes]:
        """'vocal' and 'backing' (and 'harmony') as WAV, adding up to the mix (extras; {}
        without them). Written when first asked for: the chat side never asks."""
        return {} if self.stem_samples is None else self.stem_samples.wav_files()


def sing(audio_data: bytes, *, seed: int, style: str = arrange.DEFAULT_STYLE,
         form: str = song_form.DEFAULT_FORM, audio_format: str = "ogg",
         extras: bool = True, title: str | None = None) -> Song:
    """A voice note (any audio ffmpeg reads) sung on a new melody over a band.

    The voice is decoded at VOICE_RATE (22050 Hz), at most its first audio.MAX_INPUT_S (60 s);
    the song is at most song_form.MAX_SONG_S (90 s), mixed with the voice at VOCAL_LUFS in front
    of the band and mastered to MASTER_LUFS (-14 LUFS), its decoded true peak at most
    audio.DELIVERED_CEILING_DBTP (-1 dBTP).

    Parameters
    ----------
    audio_data : bytes
        The voice note, at most audio.MAX_INPUT_BYTES (20 MiB).
    seed : int
        Same seed and options, same song.
    style : str in arrange.STYLES ("pop", "lofi", "ballad", "robot")
        The band, and the tempo range (BPM) it plays in.
    form : {"full", "short"}
        "full": an intro, the verse, a chorus from the person's own words with a second voice,
        an ending; "short": the verse alone.
    audio_format : {"ogg", "mp3", "wav"}
        The song's file format.
    extras : bool
        Also make the stems and the picture (skip them when only the song is wanted).
    title : str or None
        The picture's heading.

    Returns
    -------
    song : Song

    Raises
    ------
    audio.BadAudio
        (an InvalidRequest) with a message for the sender when the input cannot be used:
        empty, too large, not audio, under MIN_VOICE_S (0.5 s), no voice in it, or a single
        syllable.
    InvalidRequest
        For an unknown audio format, form or style.
    ToolMissing
        When ffmpeg or a soundfont is not installed.
    """
    check_formats([audio_format], audio.AUDIO_FORMATS)
    song_form.check_form(form)
    timer = StageTimer()
    band = arrange.style_named(style)
    with timer.stage("decode"):
        voice = audio.decode(audio_data, sample_rate=VOICE_RATE)
    return _sing_voice(voice, seed, band, form, audio_format, extras, timer, title=title)


def lyrics(text: str, *, seed: int, style: str = arrange.DEFAULT_STYLE,
           form: str = song_form.DEFAULT_FORM, language: str | None = None,
           audio_format: str = "ogg", extras: bool = True, title: str | None = None) -> Song:
    """Lyrics spoken by espeak-ng, then sung like a voice note (at most 300 characters).

    The hook is the repeated line, or else the last one. The summary adds the cleaned lyrics
    and the language used.

    Parameters
    ----------
    text : str
        The lyrics, at most singer.MAX_LYRICS_CHARS (300) characters once on one line.
    seed : int
        Same seed and options, same song.
    style : str in arrange.STYLES ("pop", "lofi", "ballad", "robot")
        The band.
    form : {"full", "short"}
        As for sing.
    language : str or None
        The person's language setting (a platform's code such as "pt-br"), used when the text
        itself does not tell which language it is in.
    audio_format : {"ogg", "mp3", "wav"}
        The song's file format.
    extras : bool
        Also make the stems and the picture.
    title : str or None
        The picture's heading.

    Returns
    -------
    song : Song

    Raises
    ------
    InvalidRequest
        For empty or over-long lyrics, an unsupported language setting, or an unknown audio
        format, form or style.
    audio.BadAudio
        When no voice can be sung from the speech (see sing).
    ToolMissing
        When espeak-ng, ffmpeg or a soundfont is not installed.
    """
    check_formats([audio_format], audio.AUDIO_FORMATS)
    song_form.check_form(form)
    timer = StageTimer()
    band = arrange.style_named(style)
    with timer.stage("speak"):
        speech = singer.speak(text, language)
    with timer.stage("decode"):
        voice = audio.decode(speech.audio, sample_rate=VOICE_RATE)
    song = _sing_voice(voice, seed, band, form, audio_format, extras, timer, speech,
                       title=title)
    song.summary["lyrics"] = singer.clean_lyrics(text)
    song.summary["language"] = {"code": speech.language, "name": speech.language_name,
                                "chosen_by": speech.chosen_by}
    return song


def _sing_voice(voice: audio.DecodedAudio, seed: int, band: arrange.Style, form: str,
                audio_format: str, extras: bool, timer: StageTimer,
                speech: singer.Speech | None = None, *, title: str | None = None) -> Song:
    heard = listen_to(voice, timer)
    with timer.stage("compose"):
        plan = _plan_song(heard, seed, band, form, speech)
    tuning: retune.Tuning = "robot" if band.name == "robot" else "natural"
    lead, harmony = _sung_parts(heard.syllables, plan, tuning)
    # The band renders in a thread while the voice is sung: FluidSynth, WORLD and Praat
    # each let go of the GIL for most of their work, so two cores are kept busy.
    with ThreadPoolExecutor(max_workers=1) as band_thread:
        band_future = band_thread.submit(render_band, plan.layout, band, plan.intro_bars,
                                         timer)
        sung = vocals.sing_parts([*lead, *harmony], heard.voice.samples,
                                 heard.voice.sample_rate, heard.f0, seed, timer)
        backing = band_future.result()
    sung_lead, sung_harmony = sung[:len(lead)], sung[len(lead):]
    stems = _mix(sung_lead, sung_harmony, backing, band, timer)
    with timer.stage("encode"):
        encoded, gain = audio.encode_true_peak(stems.mix, arrange.SAMPLE_RATE, audio_format,
                                               audio.DELIVERED_CEILING_DBTP)
        stems = stems.scaled(gain)  # the file had to come down a little: the stems with it
    sung_notes = tuple(sorted((n for p in sung_lead for n in p.notes()),
                              key=lambda n: n.start_s))
    harmony_notes = sorted((n for p in sung_harmony for n in p.notes()), key=lambda n: n.start_s)
    melody_midi = arrange.midi_bytes(arrange.one_track_midi(
        ((n.pitch, n.start_s, n.end_s, SUNG_VELOCITY) for n in sung_notes), plan.tempo_bpm))
    first_verse = sung_lead[0]
    with timer.stage("pitch_check"):
        # 30 ms frames, a third of the tracker's 10 ms: the accuracy moves by at most 0.006
        # (0.0024 on average; 3 speech clips x 4 seeds) and the picture's line looks the same.
        sung_f0 = sung_pitch_track(first_verse.voice, first_verse.alignment, CHECK_HOP_S)
        card = _voice_card(sung_f0, first_verse.voice, first_verse.alignment,
                           plan.layout.melody, band.name, title,
                           picture.COMPUTER_VOICE if speech else picture.YOUR_VOICE)
    image = b""
    if extras:  # drawn now; otherwise when someone asks for it (picture.draw(card))
        with timer.stage("extras"):
            image = picture.draw(card)
    summary = {
        **melody_summary(plan.layout.melody),
        "style": band.name,
        "form": form,
        "sections": [{"name": s.name, "start_s": round(s.start_s, 3)}
                     for s in plan.layout.sections],
        "syllables": len(heard.syllables),
        "syllables_sung": plan.sung_syllables,
        # A very long note is sung as far as a song of at most 90 s goes: up to here.
        "input_sung_s": round(heard.syllables[plan.sung_syllables - 1].end_s, 3),
        "phrases": [n for group in plan.groups for n in group],
        # The sung notes are the song melody's, one for one, in time order.
        "phrase_ends": list(plan.layout.melody.phrase_ends),
        "hook": ({"first_syllable": plan.hook.first, "syllables": plan.hook.count}
                 if plan.hook is not None else None),
        "duration_s": round(len(stems.mix) / arrange.SAMPLE_RATE, 3),
        "input_duration_s": round(heard.voice.duration_s, 3),
        "input_truncated": heard.voice.truncated,
        "pitch_accuracy": pitch_accuracy_of(sung_f0, first_verse.voice.start_s,
                                            first_verse.alignment.sung),
        "notes": sung_json(sung_notes),
        "harmony_notes": sung_json(harmony_notes),
    }
    return Song(audio=encoded, audio_format=audio_format, melody=plan.layout.melody,
                sung=sung_notes, melody_midi=melody_midi, picture=image, picture_card=card,
                summary=summary, timings_s=timer.report(),
                time_map=first_verse.alignment.time_map, samples=stems.mix,
                stem_samples=stems if extras else None)


@dataclass(frozen=True)
class Heard:
    """What the voice note holds: the (cleaned) voice, its pitch, its syllables, its range."""

    voice: audio.DecodedAudio
    f0: pitch.PitchTrack
    syllables: list[notes.Syllable]
    voice_range: tuple[int, int]


def listen_to(voice: audio.DecodedAudio, timer: StageTimer) -> Heard:
    """Clean, track and cut the voice into syllables.

    Parameters
    ----------
    voice : audio.DecodedAudio
        The decoded voice note (mono, at least MIN_VOICE_S seconds to be sung).
    timer : StageTimer
        Records the wall time (s) of the "denoise", "pitch" and "syllables" stages.

    Returns
    -------
    Heard
        The cleaned voice, its pitch track, its syllables (times in s) and its range (MIDI).

    Raises
    ------
    audio.BadAudio
        With its sentence, when the clip is too short or holds no voice to sing.
    """
    if voice.duration_s < MIN_VOICE_S:
        raise audio.BadAudio(TOO_SHORT.format(voice.duration_s))
    with timer.stage("denoise"):
        clean = denoise.clean_voice(voice.samples, voice.sample_rate)
        if clean.only_noise:
            raise audio.BadAudio(NO_VOICE)
        voice = replace(voice, samples=clean.samples)
    with timer.stage("pitch"):
        f0 = pitch.track(voice.samples, voice.sample_rate)
    with timer.stage("syllables"):
        syllables = notes.syllables(voice.samples, voice.sample_rate, f0)
        if not syllables:
            raise audio.BadAudio(NO_VOICE)
        if len(syllables) < 2:
            raise audio.BadAudio(TOO_FEW_SYLLABLES)
    return Heard(voice, f0, syllables, notes.comfortable_range(f0))


@dataclass(frozen=True)
class _Plan:
    """The song before it is sung: its verses (phrase lengths and melodies), the chorus and
    its hook (full form), and the layout of the parts on the time line."""

    tempo_bpm: float
    groups: list[list[int]]  # the phrase lengths of each verse
    verses: list[Melody]
    chorus: tuple[Melody, Melody] | None  # the hook sung open, then closed
    hook: song_form.Hook | None
    layout: song_form.Layout
    intro_bars: int

    @property
    def sung_syllables(self) -> int:
        return sum(sum(group) for group in self.groups)


def _plan_song(heard: Heard, seed: int, band: arrange.Style, form: str,
               speech: singer.Speech | None) -> _Plan:
    phrase_lengths = notes.phrases(heard.syllables)
    tempo = song_tempo(band, seed)
    whole = compose_phrases(seed=seed, phrase_lengths=phrase_lengths,
                            pitch_range=heard.voice_range, tempo_bpm=tempo)
    hook = chorus = None
    if form == "full":
        hook = song_hook(heard, phrase_lengths, speech)
        chorus = chorus_melodies(hook, whole, heard.voice_range, seed)
    groups = song_form.split_verses(whole, phrase_lengths, form, _verse_budget_s(whole, chorus))
    sung = [n for group in groups for n in group]
    if hook is not None and hook.first + hook.count > sum(sung):
        # A very long note, cut: the hook comes from what is sung.
        hook = song_hook(replace(heard, syllables=heard.syllables[:sum(sung)]), sung, speech)
        chorus = chorus_melodies(hook, whole, heard.voice_range, seed)
    verses = [whole] if groups == [phrase_lengths] else _verses(groups, whole, heard, seed)
    if chorus is not None:
        groups, verses = _chorus_in_time(groups, verses, whole, heard, seed)
    intro_bars = intro_bars_for(verses[0])
    layout = song_form.lay_out(verses, chorus or (), form, heard.voice.duration_s, intro_bars)
    return _Plan(tempo, groups, verses, chorus, hook, layout, intro_bars)


def _verses(groups: list[list[int]], whole: Melody, heard: Heard, seed: int) -> list[Melody]:
    """Each verse's melody; every verse from the same seed: they set out alike, as a song's
    verses do."""
    return [compose_phrases(seed=seed, phrase_lengths=group, pitch_range=heard.voice_range,
                            tempo_bpm=whole.tempo_bpm, key=whole.key) for group in groups]


def _chorus_in_time(groups: list[list[int]], verses: list[Melody], whole: Melody,
                    heard: Heard, seed: int) -> tuple[list[list[int]], list[Melody]]:
    """Verses split by the whole verse's timing can come out longer once composed apart:
    while the first chorus would start after FIRST_CHORUS_BY_S, the first verse's last phrase
    goes to the second verse (and both are composed again)."""
    bar_s = STEPS_PER_BAR * whole.step_s
    while len(groups[0]) > 1 and (intro_bars_for(verses[0]) + verses[0].n_bars) * bar_s > (
            song_form.FIRST_CHORUS_BY_S):
        groups = [group[:] for group in groups] + ([] if len(groups) > 1 else [[]])
        groups[1].insert(0, groups[0].pop())
        verses = _verses(groups[:2], whole, heard, seed) + verses[2:]
    return groups, verses


def chorus_melodies(hook: song_form.Hook, whole: Melody, voice_range: tuple[int, int],
                    seed: int) -> tuple[Melody, Melody]:
    """The hook's own motif, in the song's key, tempo and range, sung open then closed.

    Parameters
    ----------
    hook : form.Hook
        The hook; its motif has one note per hook syllable (`hook.count`).
    whole : Melody
        The song's melody, whose key and tempo (BPM) the motif takes.
    voice_range : (int, int)
        The lowest and highest MIDI notes the motif may use.
    seed : int
        The song's seed (the motif is composed with seed + 1).

    Returns
    -------
    (Melody, Melody)
        The open phrase and its closed answer.
    """
    motif = compose_phrases(seed=seed + 1, phrase_lengths=[hook.count], pitch_range=voice_range,
                            tempo_bpm=whole.tempo_bpm, key=whole.key)
    return song_form.answer_phrase(motif, voice_range)


@dataclass(frozen=True)
class Stems:
    """The mastered stems on the song's time line (mono, arrange.SAMPLE_RATE), which add up
    to the mix."""

    vocal: np.ndarray  # the lead
    harmony: np.ndarray | None  # the second voice (full form)
    backing: np.ndarray

    @cached_property
    def mix(self) -> np.ndarray:
        mixed: np.ndarray = self.vocal + self.backing
        return mixed if self.harmony is None else mixed + self.harmony

    def scaled(self, gain: float) -> Stems:
        if gain == 1.0:
            return self
        return Stems(self.vocal * gain, None if self.harmony is None else self.harmony * gain,
                      self.backing * gain)

    def wav_files(self) -> dict[str, bytes]:
        rate = arrange.SAMPLE_RATE
        files = {"vocal": audio.wav_bytes(self.vocal, rate),
                 "backing": audio.wav_bytes(self.backing, rate)}
        if self.harmony is not None:
            files["harmony"] = audio.wav_bytes(self.harmony, rate)
        return files


def _mix(lead: Sequence[vocals.SungPart], harmony: Sequence[vocals.SungPart],
         backing: np.ndarray, band: arrange.Style, timer: StageTimer) -> Stems:
    rate = arrange.SAMPLE_RATE
    with timer.stage("vocal_chain"):
        length = max(len(backing), round(vocals.end_s([*lead, *harmony]) * rate))
        backing = audio.fit_length(backing, length)
        # On the whole time line, so the chain's echo and room ring out under the ending.
        vocal = vocal_chain.process(vocals.on_time_line(lead, rate, length), rate, band.name)
        second = (vocal_chain.process(vocals.on_time_line(harmony, rate, length), rate,
                                      band.name, part="harmony") if harmony else None)
    with timer.stage("mix"):
        return Stems(*balance_and_master(vocal, second, backing))


def song_hook(heard: Heard, phrase_lengths: Sequence[int],
              speech: singer.Speech | None) -> song_form.Hook:
    """The hook: for lyrics, their repeated or last line; for a voice note, the stretch of a
    phrase that sings best (form.choose_hook).

    Parameters
    ----------
    heard : Heard
        The voice and its syllables (times in s).
    phrase_lengths : sequence of int >= 0
        Syllables per phrase; they add up to at most len(heard.syllables).
    speech : singer.Speech or None
        The typed lyrics' lines and where each was spoken (s); None for a voice note.

    Returns
    -------
    form.Hook
    """
    if speech is not None:
        from_lines = song_form.hook_from_lines(heard.syllables, speech.lines,
                                               speech.line_spans_s)
        if from_lines is not None:
            return from_lines
    return song_form.choose_hook(heard.syllables, phrase_lengths, heard.voice.samples,
                                 heard.voice.sample_rate)


def _sung_parts(syllables: list[notes.Syllable], plan: _Plan, tuning: retune.Tuning
                ) -> tuple[list[vocals.Part], list[vocals.Part]]:
    """What is sung, as parts made once each: each verse, the hook opened and answered, and
    the second voice a third above each half of the chorus; with every place they come."""
    layout, chorus, hook = plan.layout, plan.chorus, plan.hook
    starts: dict[tuple[str, int], list[float]] = {}
    for part, start_s in zip(layout.parts, layout.part_starts_s, strict=True):
        starts.setdefault(part, []).append(start_s)
    lead, harmony = [], []
    first = 0
    for index, (melody, group) in enumerate(zip(plan.verses, plan.groups, strict=True)):
        count = sum(group)
        lead.append(vocal_part(f"verse-{index}", syllables[first: first + count], melody.notes,
                               starts[("verse", index)], tuning))
        first += count
    if chorus is not None and hook is not None and ("chorus", 0) in starts:
        hook_syllables = [syllables[i] for i in hook.indices]
        half_s = chorus[0].n_bars * STEPS_PER_BAR * chorus[0].step_s
        for half, piece in enumerate(chorus):
            places = [start + half * half_s for start in starts[("chorus", 0)]]
            lead.append(vocal_part(f"chorus-{half}", hook_syllables, piece.notes, places, tuning))
            above = [replace(n, pitch=song_form.harmony_pitch(n.pitch, piece.key))
                     for n in piece.notes]
            harmony.append(vocal_part(f"harmony-{half}", hook_syllables, above, places, tuning))
    return lead, harmony


def _verse_budget_s(whole: Melody, chorus: tuple[Melody, Melody] | None) -> float:
    """How long the verses may sing: what is left of MAX_SONG_S after the intro, the ending
    and one chorus, with a margin (verses composed apart run a little longer than one)."""
    bar_s = STEPS_PER_BAR * whole.step_s
    chorus_s = sum(c.n_bars for c in chorus) * bar_s if chorus else 0.0
    return VERSE_BUDGET_SHARE * (song_form.MAX_SONG_S - (INTRO_BARS + 1) * bar_s - chorus_s)


def vocal_part(name: str, syllables: Sequence[notes.Syllable],
               melody_notes: Sequence[MelodyNote], places_s: Sequence[float],
               tuning: retune.Tuning) -> vocals.Part:
    """One sung part: these syllables on these notes, sung at the first place and repeated
    at the others.

    Parameters
    ----------
    name : str
        The part's name ("verse-0", "chorus-0" for the open half, "harmony-1", ...).
    syllables : sequence of notes.Syllable
        What is sung, one syllable per note (times in s in the voice note).
    melody_notes : sequence of MelodyNote, non-empty
        The notes (MIDI pitch; start and end in s from the part's start).
    places_s : sequence of float, non-empty
        Where the part starts on the song's time line (s): first where it is sung, then
        where it is sung again.
    tuning : retune.Tuning
        How the voice is brought onto the notes.

    Returns
    -------
    vocals.Part
    """
    first = places_s[0]
    return vocals.Part(
        name=name, syllables=tuple(syllables), pitches=tuple(n.pitch for n in melody_notes),
        onsets_s=tuple(first + n.start_s for n in melody_notes),
        end_s=first + melody_notes[-1].end_s, tuning=tuning,
        again_at_s=tuple(p - first for p in places_s[1:]))


def sung_json(sung: Sequence[SungNote]) -> list[dict[str, Any]]:
    """The notes sung as JSON: [{"pitch": MIDI note, "start_s", "end_s" (s, to 0.1 ms)}]."""
    return [{"pitch": n.pitch, "start_s": round(n.start_s, 4), "end_s": round(n.end_s, 4)}
            for n in sung]


def render_band(layout: song_form.Layout, band: arrange.Style, intro_bars: int,
                timer: StageTimer) -> np.ndarray:
    """The band under the song's melody, rendered by FluidSynth (the "backing" stage).

    Parameters
    ----------
    layout : form.Layout
        The song's melody and which bars are chorus (the band lifts there).
    band : arrange.Style
        The band's style.
    intro_bars : int >= 0
        Bars of band before the voice.
    timer : StageTimer
        Records the stage's wall time (s).

    Returns
    -------
    np.ndarray [shape=(n,)], float
        Mono samples at arrange.SAMPLE_RATE (Hz), ringing out arrange.RING_OUT_S past the
        last note.
    """
    with timer.stage("backing"):
        return arrange.render(arrange.backing_midi(layout.melody, band, intro_bars,
                                                   lift_bars=layout.chorus_bars),
                              tail_s=arrange.RING_OUT_S, chorus=band.chorus_effect)


def intro_bars_for(tune: Melody) -> int:
    """Bars of band before the voice: one (INTRO_BARS), or none when the melody (non-empty)
    itself starts half a bar or later into its first bar (a pickup): the voice never waits
    more than a bar."""
    return 0 if tune.notes[0].start_step >= STEPS_PER_BAR // 2 else INTRO_BARS


def balance_and_master(vocal: np.ndarray, harmony: np.ndarray | None, backing: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The voice VOCAL_LUFS - BACKING_LUFS in front of the band (the second voice
    HARMONY_BELOW_DB of gain under the lead), as the mastered stems measure: the limiter takes more
    off where the voice sings than where the band plays alone (the intro, the ending), so
    while that moves the balance by more than BALANCE_TOLERANCE_LU the voices' gain is
    corrected and the mix mastered again (at most BALANCE_PASSES times).

    Parameters
    ----------
    vocal, backing : np.ndarray [shape=(n,) or (n, channels)], float32
        The lead voice and the band on the song's time line, at arrange.SAMPLE_RATE (Hz).
    harmony : np.ndarray [shape=(n,) or (n, channels)], float32, or None
        The second voice, the same length, or None.

    Returns
    -------
    (vocal, harmony, backing)
        The mastered stems: their sum is at MASTER_LUFS (LUFS) under the true-peak ceiling.
    """
    rate = arrange.SAMPLE_RATE
    lead_gain = audio.loudness_gain(vocal, rate, VOCAL_LUFS)
    # Products are taken in place where the same operations in the same order allow it: a
    # song's stem is 8 MB a minute, and each copy less is that much less held at once.
    voices = vocal * lead_gain
    if harmony is not None:
        harmony = harmony * lead_gain
        harmony *= 10 ** (-HARMONY_BELOW_DB / 20)
        voices += harmony
    backing = backing * audio.loudness_gain(backing, rate, BACKING_LUFS)
    wanted = VOCAL_LUFS - BACKING_LUFS
    voice_gain = 1.0
    envelope = _master(voices + backing)
    for _ in range(BALANCE_PASSES):
        got = (audio.integrated_loudness(_times(voices, voice_gain, envelope), rate) -
               audio.integrated_loudness(backing * envelope, rate))
        if not np.isfinite(got) or abs(got - wanted) <= BALANCE_TOLERANCE_LU:
            break
        voice_gain *= 10 ** ((wanted - got) / 20)
        mix = voices * voice_gain
        mix += backing
        envelope = _master(mix)
        del mix
    del voices
    vocal = _times(vocal * lead_gain, voice_gain, envelope)
    if harmony is not None:
        harmony = _times(harmony, voice_gain, envelope)
    backing *= envelope
    return vocal, harmony, backing


def _times(samples: np.ndarray, gain: float, envelope: np.ndarray) -> np.ndarray:
    """samples * gain * envelope, in one new array."""
    product: np.ndarray = samples * gain
    product *= envelope
    return product


def _master(mix: np.ndarray) -> np.ndarray:
    """The gain envelope that brings the mix (mono, or [frames, channels]) to MASTER_LUFS
    under a true-peak limiter at audio.MASTER_CEILING_DBTP (audio.mastering_gain); it goes on
    every stem alike, so they still add up to the mix."""
    return audio.mastering_gain(mix, arrange.SAMPLE_RATE, MASTER_LUFS, audio.MASTER_CEILING_DBTP)


def song_tempo(band: arrange.Style, seed: int) -> float:
    """The song's tempo (BPM): a whole number in the style's `tempo_range_bpm`, chosen by
    the seed (int)."""
    low, high = band.tempo_range_bpm
    return float(np.random.default_rng(seed).integers(low, high + 1))


def sung_pitch_track(sung_voice: retune.RetunedVoice, alignment: retune.Alignment,
                     hop_s: float) -> pitch.PitchTrack:
    """The retuned voice's f0 with the tracker's floor under its lowest note: Praat's AC
    tracker, as pitch.track runs it.

    Parameters
    ----------
    sung_voice : retune.RetunedVoice
        The voice as sung (mono samples and their rate, Hz).
    alignment : retune.Alignment
        Its notes (MIDI pitch), non-empty.
    hop_s : float > 0
        Time between frames (s).

    Returns
    -------
    pitch.PitchTrack
        Times in s from the voice's own start.
    """
    lowest_hz = float(pitch.midi_to_hz(min(n.pitch for n in alignment.sung) - 1))
    return pitch.track(sung_voice.samples, sung_voice.sample_rate,
                       floor_hz=min(pitch.FLOOR_HZ, 0.9 * lowest_hz), hop_s=hop_s)


def pitch_accuracy_of(sung_f0: pitch.PitchTrack, start_s: float,
                      sung: Sequence[SungNote]) -> float | None:
    """Share of the sung voice's voiced frames inside a note that lie within 50 cents of
    it: the measure benchmarks/sing_quality.py takes with SwiftF0, here with Praat's tracker.

    Parameters
    ----------
    sung_f0 : pitch.PitchTrack
        The sung voice's pitch (times in s from the voice's start).
    start_s : float
        Where the voice starts on the song's time line (s).
    sung : sequence of SungNote, non-empty, in time order
        The notes (MIDI pitch, start and end in s on the song's time line).

    Returns
    -------
    float in 0..1 or None
        Rounded to 4 places; None when no voiced frame lies inside a note (frames between
        notes are not judged).
    """
    times = sung_f0.times_s + start_s
    starts = np.array([n.start_s for n in sung])
    index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, None)
    ends = np.array([n.end_s for n in sung])[index]
    judged = sung_f0.voiced & (times >= starts[0]) & (times < ends)
    if not judged.any():
        return None
    targets = np.array([n.pitch for n in sung])[index[judged]]
    within = np.abs(sung_f0.midi()[judged] - targets) <= 0.5
    return round(float(within.mean()), 4)


def _voice_card(after: pitch.PitchTrack, sung_voice: retune.RetunedVoice,
                alignment: retune.Alignment, tune: Melody, band: str, title: str | None,
                voice: str) -> bytes:
    """The first verse's card (picture.voice_card's JSON): the voice's sung line over the
    notes it was put on."""
    return picture.voice_card(
        [(n.pitch, n.start_s, n.end_s) for n in alignment.sung],
        (after.times_s + sung_voice.start_s, after.midi()),
        title=title or "A new song",
        subtitle=f"{tune.key.name} · {tune.tempo_bpm:g} BPM · {band} band",
        voice=voice,
    )


# --- Hum or sing to piano -----------------------------------------------------------------

PIANO_FORMATS = MELODY_FORMATS
NO_NOTES = ("no notes heard: hum or sing a tune (a few seconds, one note at a time, without "
            "much noise around it)")


@dataclass(frozen=True)
class Transcription:
    """A hummed or sung clip as piano notes, and the files made from them."""

    notes: tuple[transcribe.HeardNote, ...]
    duration_s: float  # as long as the clip
    tuning_cents: float  # how far the singer sat from A = 440 Hz, typically
    tuning_drift_cents: float  # how far that moved from the first note to the last
    tempo_bpm: float | None  # the detected tempo, when the notes were quantised
    files: dict[str, bytes]  # by format: "mid", "ogg", "mp3", "wav", "png"
    summary: dict[str, Any]
    timings_s: dict[str, float]


def piano(audio_data: bytes, *, quantize: bool = False,
          formats: Collection[str] = ("mid", "ogg", "png")) -> Transcription:
    """A hummed or sung clip as a clean piano melody of the same length.

    MIDI (track 'melody'), audio rendered on a piano through FluidSynth (cut at the clip's
    length), and a piano roll. By default the singer's timing is kept.

    Parameters
    ----------
    audio_data : bytes
        The clip (any audio ffmpeg reads), at most audio.MAX_INPUT_BYTES (20 MiB); only its
        first audio.MAX_INPUT_S (60 s) is used.
    quantize : bool
        Snap the notes to a 16th grid of the detected tempo (60..180 BPM); the MIDI file's
        tempo is then that tempo, else 120 BPM.
    formats : collection of str in PIANO_FORMATS ("mid", "ogg", "mp3", "wav", "png")
        The files to make.

    Returns
    -------
    transcription : Transcription
        The notes (MIDI note numbers, times in s), the clip's length (s), the singer's tuning
        and its drift (cents), the tempo (BPM, when quantised), the files and a summary.

    Raises
    ------
    audio.BadAudio
        For input that cannot be used, and for a clip with no notes in it.
    InvalidRequest
        For an unknown format.
    ToolMissing
        When ffmpeg, or (for audio) a soundfont, is not installed.
    """
    check_formats(formats, PIANO_FORMATS)
    timer = StageTimer()
    with timer.stage("decode"):
        voice = audio.decode(audio_data, sample_rate=VOICE_RATE)
    with timer.stage("pitch"):
        f0 = pitch.track(voice.samples, voice.sample_rate)
    with timer.stage("notes"):
        transcript = transcribe.transcribe(voice.samples, voice.sample_rate, f0)
        heard = transcript.notes
        if not heard:
            raise audio.BadAudio(NO_NOTES)
        tempo = None
        if quantize:
            tempo, anchor = transcribe.detect_beat(np.array([n.start_s for n in heard]))
            heard = transcribe.quantize(heard, tempo, anchor)
    midi = arrange.one_track_midi(((n.pitch, n.start_s, n.end_s, n.velocity) for n in heard),
                                  tempo or 120.0)
    files: dict[str, bytes] = {}
    if "mid" in formats:
        files["mid"] = arrange.midi_bytes(midi)
    # As long as the clip: a note still sounding at its end is cut there.
    length = round(voice.duration_s * arrange.SAMPLE_RATE)
    files.update(_audio_files(formats, lambda: _with_headroom(
        audio.fit_length(arrange.render(midi, tail_s=0.0), length)), timer))
    tuning_cents = round(transcript.tuning.cents, 1)
    drift_cents = round(transcript.tuning.drift_cents, 1)
    if "png" in formats:
        with timer.stage("picture"):
            files["png"] = picture.notes_png(
                [(n.pitch, n.start_s, n.end_s, n.velocity) for n in heard], voice.duration_s,
                title=f"{len(heard)} notes heard" + (f", {tempo:g} BPM" if tempo else ""),
                bar_s=240.0 / tempo if tempo else None)
    summary = {
        "duration_s": round(voice.duration_s, 3),
        "input_truncated": voice.truncated,
        "tuning_cents": tuning_cents,
        "tuning_drift_cents": drift_cents,
        "tempo_bpm": tempo,
        "notes": notes_json((n.pitch, n.start_s, n.end_s, n.velocity) for n in heard),
    }
    return Transcription(notes=tuple(heard), duration_s=voice.duration_s,
                         tuning_cents=tuning_cents, tuning_drift_cents=drift_cents,
                         tempo_bpm=tempo, files=files,
                         summary=summary, timings_s=timer.report())


# --- A chat sings together ----------------------------------------------------------------


def group_song(voices: Sequence[bytes], *, seed: int = 0, style: str = arrange.DEFAULT_STYLE,
               hook_voice: int | None = None, audio_format: str = "ogg",
               extras: bool = True) -> GroupSong:
    """Several people's voice notes as one song (engine/group.py says how).

    One key, tempo and band; each voice sings a verse of its own words in turn, and everyone
    sings the chorus together. A voice that cannot be sung is left out, its reason in
    summary["voices"].

    Parameters
    ----------
    voices : sequence of bytes, 2 to 6 of them
        Voice notes (any audio ffmpeg reads), in the order their senders joined.
    seed : int
        Same seed and options, same song.
    style : str in arrange.STYLES ("pop", "lofi", "ballad", "robot")
        The band.
    hook_voice : int in 0..len(voices) - 1 or None
        The index of the voice whose words make the chorus's hook; None (or a voice that
        cannot be sung): the most singable hook among them.
    audio_format : {"ogg", "mp3", "wav"}
        The song's file format.
    extras : bool
        Also make the picture.

    Returns
    -------
    song : GroupSong

    Raises
    ------
    InvalidRequest
        For fewer than 2 or more than 6 voices, a hook_voice out of range or an unknown format.
    group.TooFewVoices
        (an audio.BadAudio) when fewer than 2 can be sung.
    """
    from engine import group

    return group.group_song(voices, seed=seed, style=style, hook_voice=hook_voice,
                            audio_format=audio_format, extras=extras)
