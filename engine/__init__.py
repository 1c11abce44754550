"""The music side of SingSong: pure functions from audio and MIDI to audio and MIDI.

Nothing here knows about chats, platforms or databases.
"""

import contextlib
import io

# pyfluidsynth prints where it found its library when the CI variable is set, and
# pretty_midi imports it too: load it once, quietly, so stdout (which carries --json) stays
# clean.
with contextlib.redirect_stdout(io.StringIO()):
    import fluidsynth  # noqa: F401
