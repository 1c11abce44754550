"""Group songs: several people's voice notes as one song, a verse each and a chorus together.

One key, tempo and band for all. Each usable voice sings a verse of its own words in the
order people joined; the chorus is one hook's motif (pipeline.chorus_melodies, the song form's
chorus) sung by every voice at once, each retuned onto the same notes with its own words (a
stretch of its note with as many syllables as the hook), a little apart in time and
tuning, panned across the stereo field, with the song form's second voice on top. A
chorus comes after the first verse (everyone comes in early), after every second verse
from there, and after the last (the song ends with everyone); the verses share what
MAX_SONG_S leaves, so each sings fewer lines when many join. The one-voice path's helpers
in pipeline.py do the listening, the composing, the band and the mastering.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter1d

from engine import arrange, audio, notes, picture, pipeline, retune, vocal_chain, vocals
from engine import form as song_form
from engine.errors import InvalidRequest
from engine.melody.compose import Melody, MelodyNote, compose_phrases
from engine.melody.tokens import STEPS_PER_BAR
from engine.timing import StageTimer

MIN_VOICES, MAX_VOICES = 2, 6
# In the chorus each other voice starts up to this far (s) before or after the hook voice
# (within the 30 ms of a real ensemble's onsets) ...
ONSET_SPREAD_S = 0.015
DETUNE_CENTS = 8.0  # and sits up to this far off the notes
PAN_WIDTH = 0.8  # the chorus voices spread from this far left to this far right (1 = a speaker)
CHORUS_LIFT_DB = 2.0  # everyone together is this much louder than one voice's verse
PAN_RAMP_S = 0.02  # a voice moves between its verse place and its chorus place this fast
MIN_VERSE_SYLLABLES = 2  # a verse is never cut shorter than this
MIN_VERSE_BARS = 2  # middle choruses give way before the verses get shorter than this
OCTAVES_TRIED = range(-3, 4)  # where the motif may go for a voice, in octaves from the hook voice's
VOICE_SEED_STRIDE = 1000  # each voice's singing (vibrato, drift) from a seed of its own
ASKED, MOST_SINGABLE = "asked", "most singable"


class TooFewVoices(audio.BadAudio):
    """Fewer than MIN_VOICES of the notes can be sung; `left_out` says why, by voice index."""

    def __init__(self, message: str, left_out: dict[int, str]) -> None:
        super().__init__(message)
        self.left_out = left_out


@dataclass(frozen=True)
class GroupSong:
    """A finished group song: the mix (encoded, stereo), the melody, a picture, a summary."""

    audio: bytes
    audio_format: str
    melody_midi: bytes  # one track, 'melody': each verse and the hook voice's chorus notes
    picture: bytes  # PNG of the song's melody (extras), else b""
    summary: dict[str, Any]
    timings_s: dict[str, float]
    samples: np.ndarray = field(repr=False)  # the mix, [frames, 2] float32 at arrange.SAMPLE_RATE


@dataclass(frozen=True)
class Singer:
    """A usable voice and what it sings: its verse's phrases and melody, the stretch of its
    note it sings in the chorus, and its place in the chorus (time, tuning, pan)."""

    index: int  # in the voices as sent (the order people joined)
    heard: pipeline.Heard
    phrases: list[int]  # the phrase lengths of its verse
    verse: Melody
    chorus_hook: song_form.Hook  # its own syllables on the motif
    octave_shift: int  # semitones from the hook voice's motif into its own range
    onset_offset_s: float
    detune_cents: float
    pan: float  # -1 (left) to 1 (right)


@dataclass(frozen=True)
class Together:
    """The group song sung, before it is mixed: who sings (in join order) and who was left
    out (voice index -> the reason), the chorus and its hook, the layout, each singer's
    parts (verse, then each half of the chorus), the second voice and the band."""

    singers: list[Singer]
    left_out: dict[int, str]
    hook_voice: int  # index of the voice whose hook made the chorus
    hook: song_form.Hook
    hook_chosen_by: str  # ASKED or MOST_SINGABLE
    chorus: tuple[Melody, Melody]
    layout: song_form.Layout
    intro_bars: int
    sung: list[list[vocals.SungPart]]  # by singer: its verse, then its chorus halves
    harmony: list[vocals.SungPart]  # the hook voice a third above, on each chorus half
    backing: np.ndarray


def group_song(voices: Sequence[bytes], *, seed: int = 0, style: str = arrange.DEFAULT_STYLE,
               hook_voice: int | None = None, audio_format: str = "ogg",
               extras: bool = True) -> GroupSong:
    """Several people's voice notes as one song (what pipeline.group_song runs).

    Parameters
    ----------
    voices : sequence of bytes, MIN_VOICES to MAX_VOICES (2-6) of them
        Voice notes (any audio ffmpeg reads), in the order people joined.
    seed : int
        Makes the song reproducible (the same voices and seed give the same song).
    style : str
        The band (a name arrange.style_named knows).
    hook_voice : int in 0..len(voices) - 1, or None
        The voice whose words make the chorus's hook; None, or a voice that cannot be sung:
        the most singable hook among them.
    audio_format : "ogg", "mp3" or "wav"
        The song's file format.
    extras : bool
        Also draw the melody's picture.

    Returns
    -------
    GroupSong
        The encoded stereo mix (decoded true peak at most audio.DELIVERED_CEILING_DBTP), its
        melody as MIDI, the picture (PNG, or b""), a summary (a voice left out has its
        reason in summary["voices"]), stage timings (s) and the mix's samples
        ([frames, 2] float32 at arrange.SAMPLE_RATE Hz).

    Raises
    ------
    InvalidRequest
        For fewer than 2 or more than 6 voices, a hook_voice out of range or an unknown format.
    TooFewVoices
        (an audio.BadAudio) When fewer than 2 voices can be sung.
    """
    pipeline.check_formats([audio_format], audio.AUDIO_FORMATS)
    _check_request(voices, hook_voice)
    timer = StageTimer()
    band = arrange.style_named(style)
    together = sing_together(voices, seed=seed, band=band, hook_voice=hook_voice, timer=timer)
    stems = _mix(together, band, timer)
    with timer.stage("encode"):
        encoded, gain = audio.encode_true_peak(stems.mix, arrange.SAMPLE_RATE, audio_format,
                                               audio.DELIVERED_CEILING_DBTP)
    with timer.stage("pitch_check"):
        accuracy = [_accuracy(parts) for parts in together.sung]
    melody = _melody_notes(together)
    image = b""
    if extras:
        with timer.stage("picture"):
            image = picture.piano_roll_png(together.layout.melody,
                                           f"{len(together.singers)} voices, one song")
    samples = (stems.mix * np.float32(gain)).astype(np.float32)
    summary = _summary(together, band, len(voices), accuracy, melody, len(samples))
    midi = arrange.midi_bytes(arrange.one_track_midi(
        ((n.pitch, n.start_s, n.end_s, pipeline.SUNG_VELOCITY) for n in melody),
        together.layout.melody.tempo_bpm))
    return GroupSong(audio=encoded, audio_format=audio_format, melody_midi=midi,
                     picture=image, summary=summary, timings_s=timer.report(), samples=samples)


def _check_request(voices: Sequence[bytes], hook_voice: int | None) -> None:
    if not MIN_VOICES <= len(voices) <= MAX_VOICES:
        raise InvalidRequest(f"a group song takes {MIN_VOICES} to {MAX_VOICES} voice notes, "
                             f"not {len(voices)}")
    if hook_voice is not None and not 0 <= hook_voice < len(voices):
        raise InvalidRequest(f"the chorus can only come from voice 0 to {len(voices) - 1}, "
                             f"not {hook_voice}")


def sing_together(voices: Sequence[bytes], *, seed: int, band: arrange.Style,
                  hook_voice: int | None, timer: StageTimer) -> Together:
    """Listen to every voice, plan the song and sing it, the band rendered beside (in a thread).

    Parameters
    ----------
    voices : sequence of bytes
        The voice notes, in the order people joined.
    seed : int
        Makes the plan and the singing reproducible.
    band : arrange.Style
        The band's style.
    hook_voice : int or None
        As in group_song.
    timer : StageTimer
        Takes each stage's wall time (s).

    Returns
    -------
    Together
        The singers and who was left out (and why), the hook and chorus, the song's layout,
        every sung part, the harmony and the band's backing samples (at arrange.SAMPLE_RATE).

    Raises
    ------
    TooFewVoices
        When fewer than MIN_VOICES of the voices can be sung.
    """
    heard, left_out = _listen_all(voices, timer)
    with timer.stage("compose"):
        plan = _plan(heard, seed, band, hook_voice)
    with ThreadPoolExecutor(max_workers=1) as band_thread:
        band_future = band_thread.submit(pipeline.render_band, plan.layout, band,
                                         plan.intro_bars, timer)
        sung, harmony = _sing(plan, seed, band, timer)
        backing = band_future.result()
    return Together(plan.singers, left_out, plan.hook_voice, plan.hook, plan.hook_chosen_by,
                    plan.chorus, plan.layout, plan.intro_bars, sung, harmony, backing)


def _listen_all(voices: Sequence[bytes], timer: StageTimer
                ) -> tuple[dict[int, pipeline.Heard], dict[int, str]]:
    """Each voice heard as the one-voice path hears it, or the sentence saying why not."""
    heard: dict[int, pipeline.Heard] = {}
    left_out: dict[int, str] = {}
    for index, data in enumerate(voices):
        try:
            with timer.stage("decode"):
                decoded = audio.decode(data, sample_rate=pipeline.VOICE_RATE)
            heard[index] = pipeline.listen_to(decoded, timer)
        except audio.BadAudio as error:
            left_out[index] = str(error)
    if len(heard) < MIN_VOICES:
        raise TooFewVoices(f"a group song needs at least {MIN_VOICES} voices to sing, and only "
                           f"{len(heard)} of the {len(voices)} notes had one", left_out)
    return heard, left_out


# --- The plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _GroupPlan:
    singers: list[Singer]
    hook_voice: int
    hook: song_form.Hook
    hook_chosen_by: str
    chorus: tuple[Melody, Melody]
    layout: song_form.Layout
    intro_bars: int


def _plan(heard: dict[int, pipeline.Heard], seed: int, band: arrange.Style,
          asked: int | None) -> _GroupPlan:
    """The key and tempo from the first voice, the chorus from the chosen hook, each
    voice's verse cut to its share of the song, and the song form's layout."""
    phrases = {i: notes.phrases(h.syllables) for i, h in heard.items()}
    first = min(heard)
    tempo = pipeline.song_tempo(band, seed)
    whole = compose_phrases(seed=seed, phrase_lengths=phrases[first],
                            pitch_range=heard[first].voice_range, tempo_bpm=tempo)
    hook_voice, hook, chosen_by = _choose_hook(heard, phrases, asked)
    chorus = pipeline.chorus_melodies(hook, whole, heard[hook_voice].voice_range, seed)
    chorus_after, budget_s = _choruses(whole, chorus, len(heard))
    verses = {i: _fit_verse(h, phrases[i], budget_s, seed, whole,
                            whole if i == first else None) for i, h in heard.items()}
    singers = _place_singers(heard, verses, hook_voice, hook, chorus, seed)
    # The hook voice's verse may have been cut before its hook: the summary names what it sings.
    hook = next(s.chorus_hook for s in singers if s.index == hook_voice)
    intro_bars = pipeline.intro_bars_for(singers[0].verse)
    parts = [part for number in range(len(singers))
             for part in [("verse", number)] + [("chorus", 0)] * (number in chorus_after)]
    layout = song_form.place_parts(parts, [s.verse for s in singers], chorus, intro_bars)
    return _GroupPlan(singers, hook_voice, hook, chosen_by, chorus, layout, intro_bars)


def _choose_hook(heard: dict[int, pipeline.Heard], phrases: dict[int, list[int]],
                 asked: int | None) -> tuple[int, song_form.Hook, str]:
    """The asked voice's hook when it can be sung; else the most singable hook of all the
    notes, by the score the song form chooses one note's hook with (the earlier voice on a
    tie); else (no phrase long enough anywhere) the first voice's."""
    if asked in heard:
        return asked, pipeline.song_hook(heard[asked], phrases[asked], None), ASKED
    best: tuple[float, int, song_form.Hook] | None = None
    for index, one in heard.items():
        found = song_form.scored_hook(one.syllables, phrases[index], one.voice.samples,
                                      one.voice.sample_rate)
        if found is not None and (best is None or found[0] > best[0] + 1e-12):
            best = (found[0], index, found[1])
    if best is None:
        first = min(heard)
        return first, pipeline.song_hook(heard[first], phrases[first], None), MOST_SINGABLE
    return best[1], best[2], MOST_SINGABLE


def _choruses(whole: Melody, chorus: tuple[Melody, Melody], voices: int
              ) -> tuple[list[int], float]:
    """The verses (by number) a chorus follows, and how long each verse may sing (s).

    A chorus after the first verse, after every second one from there and after the last;
    while that leaves the verses less than MIN_VERSE_BARS each, the middle choruses give way,
    the latest first. The verses share equally what MAX_SONG_S leaves after the intro, the
    ending and the choruses, each at most the song form's VERSE_MAX_S."""
    bar_s = STEPS_PER_BAR * whole.step_s
    chorus_s = sum(c.n_bars for c in chorus) * bar_s
    after = sorted({0, voices - 1, *range(2, voices - 1, 2)})
    while True:
        left_s = song_form.MAX_SONG_S - (pipeline.INTRO_BARS + 1) * bar_s - len(after) * chorus_s
        budget_s = min(song_form.VERSE_MAX_S, left_s / voices)
        if budget_s >= MIN_VERSE_BARS * bar_s or len(after) <= 2:
            return after, budget_s
        del after[-2]


def _fit_verse(heard: pipeline.Heard, phrases: list[int], budget_s: float, seed: int,
               whole: Melody, composed: Melody | None) -> tuple[list[int], Melody]:
    """The voice's first phrases and their melody (in the song's key and tempo, from the
    song's seed as every verse is), as many as fit in `budget_s`: fewer lines each when many
    join. Cut by the timing of a longer melody, a verse composed again can come out shorter
    than that timing said: the next phrases are given back while the verse still fits.
    `composed`: the melody of all its phrases, when already made."""
    lengths = list(phrases)
    melody = composed or _verse_melody(heard, lengths, seed, whole)
    while melody.duration_s > budget_s + 1e-6 and sum(lengths) > MIN_VERSE_SYLLABLES:
        lengths = _shorter(lengths, melody, budget_s)
        melody = _verse_melody(heard, lengths, seed, whole)
    while lengths == phrases[:len(lengths)] and len(lengths) < len(phrases):
        longer = phrases[:len(lengths) + 1]
        again = _verse_melody(heard, longer, seed, whole)
        if again.duration_s > budget_s + 1e-6:
            break
        lengths, melody = longer, again
    return lengths, melody


def _verse_melody(heard: pipeline.Heard, lengths: list[int], seed: int,
                  whole: Melody) -> Melody:
    return compose_phrases(seed=seed, phrase_lengths=lengths, pitch_range=heard.voice_range,
                           tempo_bpm=whole.tempo_bpm, key=whole.key)


def _shorter(lengths: list[int], melody: Melody, budget_s: float) -> list[int]:
    """Fewer syllables: the phrases that end within the budget; else all but the last
    phrase; a single phrase is cut after its last note within the budget."""
    kept = song_form.split_verses(melody, lengths, "short", budget_s)[0]
    if kept != lengths:
        return kept
    if len(lengths) > 1:
        return lengths[:-1]
    within = sum(1 for n in melody.notes if n.end_s <= budget_s)
    return [max(MIN_VERSE_SYLLABLES, min(within, lengths[0] - 1))]


def _place_singers(heard: dict[int, pipeline.Heard],
                   verses: dict[int, tuple[list[int], Melody]], hook_voice: int,
                   hook: song_form.Hook, chorus: tuple[Melody, Melody],
                   seed: int) -> list[Singer]:
    """Each singer with its chorus syllables, octave and place: the hook voice on the beat,
    in tune and nearest the middle; the others a seeded few milliseconds and cents off it,
    spread left and right in the order they joined."""
    rng = np.random.default_rng(seed)
    pans = iter(sorted(np.linspace(-PAN_WIDTH, PAN_WIDTH, len(heard)), key=abs))
    hook_pan = next(pans)
    motif = [n.pitch for piece in chorus for n in piece.notes]
    singers = []
    for index, one in heard.items():
        lengths, verse = verses[index]
        is_hook = index == hook_voice
        offset_s, cents = rng.uniform(-1, 1, 2) * (ONSET_SPREAD_S, DETUNE_CENTS)
        sung_hook = (hook if is_hook and hook.first + hook.count <= sum(lengths)
                     else _chorus_hook(one, lengths, hook.count))
        singers.append(Singer(
            index=index, heard=one, phrases=lengths, verse=verse, chorus_hook=sung_hook,
            octave_shift=0 if is_hook else _octave_shift(motif, one.voice_range),
            onset_offset_s=0.0 if is_hook else float(offset_s),
            detune_cents=0.0 if is_hook else float(cents),
            pan=float(hook_pan if is_hook else next(pans))))
    return singers


def _octave_shift(motif: Sequence[int], voice_range: tuple[int, int]) -> int:
    """The octave (semitones) that puts the motif's pitches most inside a voice's
    comfortable range: the fewest semitones outside it, the higher octave on a tie (a voice
    carries better a little above its range than below it)."""
    low, high = voice_range

    def outside(shift: int) -> int:
        return sum(max(low - p - shift, 0, p + shift - high) for p in motif)

    return min((12 * octave for octave in OCTAVES_TRIED), key=lambda s: (outside(s), -s))


def _chorus_hook(heard: pipeline.Heard, verse_phrases: list[int],
                 count: int) -> song_form.Hook:
    """The stretch of `count` syllables of this voice that sings best on the motif: from
    the phrases its verse sings, else from any phrase, else its first `count` syllables
    (across phrases); a note with fewer syllables than that sings them all."""
    every = notes.phrases(heard.syllables)
    for lengths in (verse_phrases, every):
        found = song_form.scored_hook(heard.syllables, lengths, heard.voice.samples,
                                      heard.voice.sample_rate, count)
        if found is not None:
            return found[1]
    return song_form.Hook(0, min(count, len(heard.syllables)))


# --- Singing ------------------------------------------------------------------------------


def _sing(plan: _GroupPlan, seed: int, band: arrange.Style, timer: StageTimer
          ) -> tuple[list[list[vocals.SungPart]], list[vocals.SungPart]]:
    """Every singer's verse and chorus halves, and the hook voice's second voice, each
    retuned once (vocals.sing_parts) and placed wherever it comes."""
    tuning: retune.Tuning = "robot" if band.name == "robot" else "natural"
    starts: dict[tuple[str, int], list[float]] = {}
    for part, start_s in zip(plan.layout.parts, plan.layout.part_starts_s, strict=True):
        starts.setdefault(part, []).append(start_s)
    half_s = plan.chorus[0].n_bars * STEPS_PER_BAR * plan.chorus[0].step_s
    sung, harmony = [], []
    for number, singer in enumerate(plan.singers):
        syllables = singer.heard.syllables
        parts = [pipeline.vocal_part("verse", syllables[:sum(singer.phrases)], singer.verse.notes,
                                     starts[("verse", number)], tuning)]
        hook_syllables = [syllables[i] for i in singer.chorus_hook.indices]
        for half, piece in enumerate(plan.chorus):
            places = [s + half * half_s + singer.onset_offset_s for s in starts[("chorus", 0)]]
            motif = _motif_for([replace(n, pitch=n.pitch + singer.octave_shift)
                                for n in piece.notes], len(hook_syllables))
            parts.append(replace(pipeline.vocal_part(f"chorus-{half}", hook_syllables, motif,
                                                     places, tuning),
                                 detune_cents=singer.detune_cents))
            if singer.index == plan.hook_voice:
                above = [replace(n, pitch=song_form.harmony_pitch(n.pitch, piece.key))
                         for n in piece.notes]
                parts.append(pipeline.vocal_part(f"harmony-{half}", hook_syllables, above, places,
                                                 tuning))
        done = vocals.sing_parts(parts, singer.heard.voice.samples,
                                 singer.heard.voice.sample_rate, singer.heard.f0,
                                 seed + VOICE_SEED_STRIDE * number, timer)
        sung.append([p for p in done if not p.part.name.startswith("harmony")])
        harmony += [p for p in done if p.part.name.startswith("harmony")]
    return sung, harmony


def _motif_for(motif: list[MelodyNote], syllables: int) -> list[MelodyNote]:
    """The motif's notes for a voice with `syllables` to sing on them: all of them, or for a
    voice with fewer syllables than notes, its last syllable held from its own note to the
    motif's end on the motif's last pitch (onsets stay with everyone else's)."""
    if syllables >= len(motif):
        return motif
    last = motif[syllables - 1]
    return [*motif[:syllables - 1],
            replace(last, pitch=motif[-1].pitch, end_s=motif[-1].end_s)]


# --- The mix ------------------------------------------------------------------------------


def _mix(together: Together, band: arrange.Style, timer: StageTimer) -> pipeline.Stems:
    """Each voice through the vocal chain and to the same loudness; in its verse alone in
    the middle, in the chorus at its place in the stereo field with the others; the second
    voice and the band in the middle; balanced and mastered as one voice's song is."""
    rate = arrange.SAMPLE_RATE
    every = [p for parts in together.sung for p in parts] + together.harmony
    length = max(len(together.backing), round(vocals.end_s(every) * rate))
    chorus_gain = 10 ** (CHORUS_LIFT_DB / 20) / np.sqrt(len(together.singers))
    with timer.stage("vocal_chain"):
        tracks = [vocal_chain.process(vocals.on_time_line(parts, rate, length), rate, band.name)
                  for parts in together.sung]
        gains = {singer.index: np.float32(audio.loudness_gain(track, rate, pipeline.VOCAL_LUFS))
                 for singer, track in zip(together.singers, tracks, strict=True)}
        harmony = vocal_chain.process(vocals.on_time_line(together.harmony, rate, length),
                                      rate, band.name, part="harmony")
    with timer.stage("mix"):
        vocal = np.zeros((length, 2), np.float32)
        for singer, track, parts in zip(together.singers, tracks, together.sung, strict=True):
            vocal += _placed(track * gains[singer.index],
                             _chorus_mask(parts[1:], rate, length), singer.pan, chorus_gain)
        # The second voice stays as far under the hook voice as in one voice's song.
        second = _centred(harmony * gains[together.hook_voice])
        backing = _centred(audio.fit_length(together.backing, length))
        return pipeline.Stems(*pipeline.balance_and_master(vocal, second, backing))


def _chorus_mask(chorus: Sequence[vocals.SungPart], rate: int, length: int) -> np.ndarray:
    """1 where the voice sings in a chorus, 0 elsewhere, moving between over PAN_RAMP_S."""
    mask = np.zeros(length, np.float32)
    for part in chorus:
        for shift in (0.0, *part.part.again_at_s):
            start = round((part.voice.start_s + shift) * rate)
            mask[start: start + len(part.voice.samples) * rate // part.voice.sample_rate] = 1
    smooth: np.ndarray = uniform_filter1d(mask, size=max(1, round(PAN_RAMP_S * rate)))
    return smooth


def _placed(track: np.ndarray, chorus: np.ndarray, pan: float,
            chorus_gain: float) -> np.ndarray:
    """A mono track as [frames, 2]: in the middle where `chorus` is 0, at `pan` and
    `chorus_gain` where it is 1 (constant-power panning: the loudness stays)."""
    angle = (1 + chorus * pan) * np.pi / 4
    level = track * (1 + chorus * np.float32(chorus_gain - 1))
    placed: np.ndarray = np.stack([level * np.cos(angle), level * np.sin(angle)], axis=1)
    return placed.astype(np.float32)


def _centred(track: np.ndarray) -> np.ndarray:
    return _placed(track, np.zeros(len(track), np.float32), 0.0, 1.0)


# --- What it sang -------------------------------------------------------------------------


def _accuracy(parts: Sequence[vocals.SungPart]) -> tuple[float | None, float | None]:
    """The verse's and the chorus's pitch accuracy (share of voiced frames within 50 cents
    of the note, pipeline.pitch_accuracy_of; the chorus's two halves together, by frames)."""
    shares = []
    for part in parts:
        f0 = pipeline.sung_pitch_track(part.voice, part.alignment, pipeline.CHECK_HOP_S)
        shares.append(pipeline.pitch_accuracy_of(f0, part.voice.start_s, part.alignment.sung))
    chorus = [s for s in shares[1:] if s is not None]
    return shares[0], round(float(np.mean(chorus)), 4) if chorus else None


def _melody_notes(together: Together) -> list[retune.SungNote]:
    """The melody: each verse as its voice sings it, and the hook voice's chorus (on the
    beat: the others sing the same notes a few milliseconds apart), in time order."""
    hook_parts = next(parts for singer, parts in zip(together.singers, together.sung,
                                                     strict=True)
                      if singer.index == together.hook_voice)
    verses = [n for parts in together.sung for n in parts[0].notes()]
    chorus = [n for part in hook_parts[1:] for n in part.notes()]
    return sorted(verses + chorus, key=lambda n: n.start_s)


def _summary(together: Together, band: arrange.Style, sent: int,
             accuracy: Sequence[tuple[float | None, float | None]],
             melody: Sequence[retune.SungNote], frames: int) -> dict[str, Any]:
    tune = together.layout.melody
    offsets_s = [s.onset_offset_s for s in together.singers]
    return {
        "duration_s": round(frames / arrange.SAMPLE_RATE, 3),
        "key": tune.key.name,
        "tempo_bpm": tune.tempo_bpm,
        "style": band.name,
        "sections": _sections(together),
        "voices": _voices(together, sent, accuracy),
        "hook": {"voice": together.hook_voice, "first_syllable": together.hook.first,
                 "syllables": together.hook.count, "chosen_by": together.hook_chosen_by},
        "chorus_onset_spread_ms": round(1000 * (max(offsets_s) - min(offsets_s)), 1),
        "notes": pipeline.sung_json(melody),
    }


def _sections(together: Together) -> list[dict[str, Any]]:
    """Each part of the song, where it starts (s) and which voices (indices) sing in it."""
    layout, singers = together.layout, together.singers
    everyone = [s.index for s in singers]
    sections = [{"name": "intro", "start_s": 0.0, "voices": []}] if together.intro_bars else []
    for (kind, number), start_s in zip(layout.parts, layout.part_starts_s, strict=True):
        sections.append({"name": kind, "start_s": round(start_s, 3),
                         "voices": [singers[number].index] if kind == "verse" else everyone})
    sections.append({"name": "ending", "start_s": round(layout.sections[-1].start_s, 3),
                     "voices": []})
    return sections


def _voices(together: Together, sent: int,
            accuracy: Sequence[tuple[float | None, float | None]]) -> list[dict[str, Any]]:
    """Every voice as sent: whether it sings, why not, its verse's span (s) and how well it
    kept to the notes in its verse and in the chorus."""
    out: list[dict[str, Any]] = [
        {"index": index, "sung": False, "reason": reason, "verse_start_s": None,
         "verse_end_s": None, "pitch_accuracy_verse": None, "pitch_accuracy_chorus": None}
        for index, reason in together.left_out.items()]
    layout = together.layout
    for number, (singer, (verse, chorus)) in enumerate(zip(together.singers, accuracy,
                                                           strict=True)):
        start_s = layout.part_starts_s[layout.parts.index(("verse", number))]
        out.append({
            "index": singer.index, "sung": True, "reason": None,
            "verse_start_s": round(start_s, 3),
            "verse_end_s": round(start_s + singer.verse.duration_s, 3),
            "pitch_accuracy_verse": verse, "pitch_accuracy_chorus": chorus,
            "syllables_sung": sum(singer.phrases),
            "syllables": len(singer.heard.syllables),
            "chorus_syllables": {"first": singer.chorus_hook.first,
                                 "count": singer.chorus_hook.count},
            "pan": round(singer.pan, 3),
            "onset_offset_ms": round(1000 * singer.onset_offset_s, 1),
            "detune_cents": round(singer.detune_cents, 1),
        })
    return sorted(out, key=lambda v: int(v["index"]))
