"""Persistence: users, chats, jobs, tracks and albums (SQLAlchemy), and the blob store.

Nothing is stored yet: the melody composer writes files only. The models and the
content-addressed blob store arrive with the job engine (issue 5).
"""
