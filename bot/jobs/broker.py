"""The taskiq glue: the broker over Redis with its one task (run a job by id), and
`singsong worker`, which takes jobs from it. Its connections heal and its listening waits
out a Redis that is away."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_fixed

from bot import outages
from bot.jobs import constants
from bot.jobs.constants import QUEUE_NAME, TASK_NAME
from bot.jobs.tasks import Runner, run_engine
from bot.jobs.worker import execute_job, finish_measuring, warm_worker

log = logging.getLogger("singsong.jobs")


def make_broker(redis_url: str, runner: Runner = run_engine, database_url: str = "",
                data_dir: str = "", queue_name: str = QUEUE_NAME) -> Any:
    """The taskiq broker over Redis, with the one task: run a job by id. Its connections heal:
    a command on a connection that a Redis restart closed reconnects and runs again."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

    class Broker(ListQueueBroker):
        """Waits on the queue in blocking calls shorter than the socket timeout (an idle
        worker is not in an outage), and listens on through a Redis restart."""

        async def listen(self) -> AsyncGenerator[bytes, None]:
            while True:
                popped = await self._pop()
                if popped:
                    message = popped[1]
                    yield message.encode() if isinstance(message, str) else message

        async def _pop(self) -> Any:
            """One blocking wait on the queue, tried again every RECONNECT_S while Redis is
            away, however long."""
            def away(state: RetryCallState) -> None:
                if state.attempt_number == 1:  # said once an outage
                    log.warning("worker: Redis is away (%s): listening again every %.1f s",
                                state.outcome.exception() if state.outcome else None,
                                outages.RECONNECT_S)

            retrying = AsyncRetrying(retry=retry_if_exception_type((RedisError, OSError)),
                                     wait=wait_fixed(outages.RECONNECT_S), before_sleep=away)
            async for attempt in retrying:
                with attempt:
                    async with Redis(connection_pool=self.connection_pool) as redis:
                        popped = await redis.brpop([self.queue_name],
                                                   timeout=constants.LISTEN_BLOCK_S)
            if attempt.retry_state.attempt_number > 1:
                log.info("worker: Redis is back")
            return popped

    healing: dict[str, Any] = {"retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 4),
               "retry_on_error": [RedisConnectionError, RedisTimeoutError]}
    # Results only say when a job has moved on (its outcome word); they are named after the
    # queue and expire in an hour.
    broker = Broker(redis_url, queue_name=queue_name, **healing).with_result_backend(
        RedisAsyncResultBackend(redis_url, result_ex_time=3600, prefix_str=queue_name,
                                **healing))

    async def run_job(job_id: int) -> str:
        outcome = await asyncio.to_thread(execute_job, job_id, database_url, data_dir, runner)
        return outcome.value  # the word, which any result serializer keeps

    broker.register_task(run_job, task_name=TASK_NAME)
    return broker


async def run_worker(redis_url: str, database_url: str, data_dir: str,
                     runner: Runner = run_engine, queue_name: str = QUEUE_NAME, *,
                     stop_on_signals: bool = True) -> None:
    """`singsong worker`: take jobs from Redis one at a time until SIGTERM or SIGINT; then
    take no more, and finish the job under way (its outcome sent) before returning."""
    from taskiq.receiver import Receiver

    broker = make_broker(redis_url, runner, database_url, data_dir, queue_name)
    finish = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if stop_on_signals else ()
    for signum in signals:
        loop.add_signal_handler(signum, finish.set)
    await broker.startup()
    broker.is_worker_process = True
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            if runner is run_engine:  # the first job after a start does not wait for it
                await _warm(executor, database_url, data_dir)
            await Receiver(broker, executor, max_async_tasks=1,
                           run_startup=False).listen(finish)
        await asyncio.to_thread(finish_measuring)  # the last song's features stored
        if finish.is_set():
            log.info("worker: stopped, the job under way finished")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await broker.shutdown()


async def _warm(executor: ThreadPoolExecutor, database_url: str, data_dir: str) -> None:
    """warm_worker in the thread that runs the jobs (it keeps their database engine); a
    warm-up that fails is said and the worker listens all the same (its first job tries)."""
    try:
        await asyncio.get_running_loop().run_in_executor(executor, warm_worker, database_url,
                                                         data_dir)
    except Exception as error:
        log.warning("worker: warming up failed (%s: %s)", type(error).__name__, error)
