"""Persistence: users, chats, jobs, tracks, albums and votes (SQLAlchemy 2.0, async), and a
content-addressed blob store for the audio, MIDI and pictures they refer to."""
