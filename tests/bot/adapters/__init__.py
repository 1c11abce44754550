"""Tests of the doors (bot/adapters): Telegram, Discord, the web page and its API."""
