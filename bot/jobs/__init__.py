"""The job engine: jobs are recorded, then run by a worker, and the job row stays the truth.

Embedded default: an in-process queue feeding a process pool (one worker per core).
Scale-out (SINGSONG_REDIS_URL set): taskiq over Redis, run by `singsong worker` processes on
any number of machines. Both call `execute_job`, which claims a queued job, runs the engine
while renewing the job's lease, stores the result and marks the job done (or queued again
for a retry, or failed).

The parts, by role:
    constants  the tunables (attempts, leases, sweeps) and the outcomes of an attempt
    limits     how much one person, and everyone, may ask (Limits, check_limits)
    tasks      what each kind of job asks of the engine (run_engine, measure)
    worker     a worker's claim, heartbeat and save (execute_job), then the song's curation
               features, measured while the reply is sent (finish_measuring waits for them)
    engine     the supervisor: the process pool, or Redis and its sweep (JobEngine)
    broker     the taskiq glue: the broker and `singsong worker` (run_worker)
"""

from bot.jobs.broker import make_broker, run_worker
from bot.jobs.constants import INTERNAL_ERROR, MAX_ATTEMPTS, Outcome
from bot.jobs.engine import JobEngine
from bot.jobs.limits import LOOSE_LIMITS, Limits, check_limits
from bot.jobs.tasks import JobResult, Runner, measure, run_engine, sung_as, warm_up
from bot.jobs.worker import close_worker_threads, execute_job, finish_measuring, warm_worker

__all__ = [
    "INTERNAL_ERROR",
    "LOOSE_LIMITS",
    "MAX_ATTEMPTS",
    "JobEngine",
    "JobResult",
    "Limits",
    "Outcome",
    "Runner",
    "check_limits",
    "close_worker_threads",
    "execute_job",
    "finish_measuring",
    "make_broker",
    "measure",
    "run_engine",
    "run_worker",
    "sung_as",
    "warm_up",
    "warm_worker",
]
