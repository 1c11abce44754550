"""The engine's exceptions: one root, and one kind for a caller's mistake."""


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class InvalidRequest(EngineError):
    """The caller asked for something the engine cannot do (a bad key, 0 bars, ...).

    The message is one sentence meant for the person who made the request.
    """


class ToolMissing(EngineError):
    """A system tool (ffmpeg, fluidsynth) or a data file (a soundfont) is not installed."""
