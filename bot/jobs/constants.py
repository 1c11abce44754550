"""The job engine's tunables and the words its parts say to each other.

Read as `constants.NAME` at the time of use (not imported by name), so that a test or a
benchmark can shorten a wait by setting it here once.
"""

from __future__ import annotations

from enum import StrEnum

MAX_ATTEMPTS = 3
RETRY_BASE_S = 2.0  # a failed attempt waits 2, then 4 seconds before the next
STALE_RUNNING_S = 600.0  # a job running this long is given up, however alive its worker
HEARTBEAT_S = 2.0  # a worker renews the lease of the job it runs this often
LEASE_S = 7.0  # a running job with no heartbeat for this long belongs to a dead worker
SWEEP_S = 2.0  # over Redis: how often leases, the queue in Redis and the rows are compared
ABSENT_SWEEPS = 2  # a queued job missing from Redis in this many sweeps in a row is resent
LISTEN_BLOCK_S = 2  # a worker's blocking wait on the queue, well under the socket timeout
TASK_NAME = "singsong.run_job"
QUEUE_NAME = "singsong-jobs"
RESULT_POLL_S = 0.25  # how often a waiting client looks for a worker's result in Redis
INTERNAL_ERROR = "internal: "  # starts Job.error when the fault was ours, not the sender's
WORKER_STOPPED = f"{INTERNAL_ERROR}its worker stopped"


class Outcome(StrEnum):
    """How one attempt at a job, or the following of a job, ended. DONE and FAILED are the
    job's own statuses (storage.models.JobStatus); the others say what the engine does next.
    on_finished is called with DONE, FAILED, GONE or LOST."""

    DONE = "done"
    FAILED = "failed"
    RETRY = "retry"  # the job is queued again for another attempt
    SKIPPED = "skipped"  # the job was not this attempt's to run (or to store) any more
    GONE = "gone"  # the job was deleted meanwhile (/forget)
    LOST = "lost"  # the database did not come back in time: a restart takes the job up
