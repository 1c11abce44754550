"""Fakes of the chat platforms' servers, on 127.0.0.1, for offline end-to-end tests."""
