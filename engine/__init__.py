"""The music side of SingSong: pure functions from audio and MIDI to audio and MIDI.

Nothing here knows about chats, platforms or databases.
"""
