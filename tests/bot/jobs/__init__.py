"""Tests of bot/jobs: the job engine (pool, Redis), its workers, limits and retries."""
