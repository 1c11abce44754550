"""Tests of bot/commands: what each command means, its registry and its replies."""
