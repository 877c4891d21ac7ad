"""Workers that `vardmatch serve` runs itself: with SQLite, a pool of threads that claim jobs from the database and
run each in a child process (so the README's first command stays one command); with PostgreSQL, `vardmatch worker`
processes (none by default: run them on any machine that reaches the database)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from api.core import job_store as store
from api.core.settings import Settings
from api.jobs.scheduled import Schedule
from models.db import transaction

log = logging.getLogger("vardmatch.jobs")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of a job's process: this one's, with every setting spelled out."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"VARDMATCH_{name.upper()}"] = str(value)
    return env


# Job processes are forked from a fork server that has imported the engine once: a job starts in milliseconds
# rather than the seconds a fresh interpreter takes to import OR-Tools, numpy and scipy. The fork server is a clean
# single-threaded process, so forking it is safe whatever threads the service or worker runs.
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(
    ["api.jobs.child", "matching.solvers.solve", "matching.reports.verify", "matching.reports.analysis"]
)


class Child:
    """A job's process (api.jobs.child.entry)."""

    def __init__(self, settings: Settings, job_id: int, attempt: int) -> None:
        from api.jobs.child import entry

        # A lifeline: only this process holds the writing end, so the job's process reads EOF the moment its
        # worker dies, however it dies (SIGKILL included), and stops: the job's next run must not meet it.
        lifeline, self.holder = _FORKS.Pipe(duplex=False)
        self.process = _FORKS.Process(
            target=entry, args=(job_id, attempt, settings.model_dump(mode="json"), lifeline), name=f"job-{job_id}"
        )
        self.process.start()
        lifeline.close()

    def wait(self) -> int:
        """Wait for the process to end; its exit code (negative: the signal that ended it)."""
        self.process.join()
        self.holder.close()
        return self.process.exitcode if self.process.exitcode is not None else -1

    def terminate(self) -> None:
        """SIGTERM."""
        self.process.terminate()


def warm_up() -> None:
    """Start the fork server now (it imports the engine once), so that the first job does not wait for it."""
    from multiprocessing import forkserver

    forkserver.ensure_running()


def start_child(settings: Settings, job_id: int, attempt: int) -> Child:
    """Start a job's process."""
    return Child(settings, job_id, attempt)


class LocalPool:
    """N threads, each claiming the next job its lock allows and running it in a child process."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, size: int) -> None:
        self.sessions, self.settings, self.size = sessions, settings, size
        self.name = f"{socket.gethostname()}:{os.getpid()}:local"
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.children: dict[int, Child] = {}
        self.lock = threading.Lock()
        # What runs on a schedule (retention), ticking in this service: with SQLite nothing else would.
        self.schedule = Schedule(sessions, settings.retention_cron, self.wake.set) if settings.retention_cron else None

    def start(self) -> None:
        """Hand back what a previous server left running, then start the threads (and the schedule)."""
        self.recover()
        if self.schedule is not None:
            self.schedule.start()
        threading.Thread(target=warm_up, daemon=True).start()
        for index in range(self.size):
            # The first thread of a pool of several never takes the reports computed after a round: however many
            # of those run, a round or a what-if always finds a worker.
            background = index > 0 or self.size == 1
            thread = threading.Thread(target=self._loop, args=(background,), name=f"job-pool-{index}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def alive(self) -> int:
        """Threads still taking jobs."""
        return 0 if self.stopping.is_set() else sum(t.is_alive() for t in self.threads)

    def recover(self) -> int:
        """Queue again (or fail) running jobs whose heartbeat stopped: their process or server died."""
        with transaction(self.sessions) as session:
            lost = store.stalled(session, self.settings.worker_stalled_s)
            for job_id, attempt in lost:
                store.hand_back(session, job_id, attempt, self.settings.job_max_attempts, "its process stopped")
        return len(lost)

    def _claim(self, background: bool) -> tuple[int, int] | None:
        with transaction(self.sessions) as session:
            return store.claim_next(session, self.name, self.settings.job_max_attempts, background=background)

    def _loop(self, background: bool) -> None:
        last_recovery = time.monotonic()
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_recovery > self.settings.worker_stalled_s:
                    self.recover()
                    last_recovery = time.monotonic()
                claimed = self._claim(background)
            except Exception:
                log.exception("claiming a job failed")
                claimed = None
            if claimed is None:
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            self._run(*claimed)

    def _run(self, job_id: int, attempt: int) -> None:
        process = start_child(self.settings, job_id, attempt)
        with self.lock:
            self.children[job_id] = process
        code = process.wait()
        with self.lock:
            self.children.pop(job_id, None)
        why = "the service stopped" if self.stopping.is_set() else f"its process ended with exit code {code}"
        with transaction(self.sessions) as session:
            store.hand_back(session, job_id, attempt, self.settings.job_max_attempts, why)
        self.wake.set()  # a lock may have come free

    def stop(self) -> None:
        """Take no more jobs; let running ones finish within the grace time, then stop and hand them back."""
        self.stopping.set()
        self.wake.set()
        if self.schedule is not None:
            self.schedule.stopping.set()
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        while time.monotonic() < deadline:
            with self.lock:
                if not self.children:
                    break
            time.sleep(0.1)
        with self.lock:
            running = list(self.children.values())
        for process in running:
            process.terminate()
        for thread in self.threads:
            thread.join(timeout=15)


class WorkerProcesses:
    """`vardmatch worker` processes started by the service (PostgreSQL), stopped with it."""

    def __init__(self, settings: Settings, size: int) -> None:
        self.settings, self.size = settings, size
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the processes (the first of several takes no background jobs, as in LocalPool)."""
        for index in range(self.size):
            queues = store.QUEUE if index == 0 and self.size > 1 else f"{store.QUEUE},{store.BACKGROUND}"
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "api.cli", "worker", "--queues", queues],
                    env=child_env(self.settings),
                    stdin=subprocess.DEVNULL,
                    cwd=ROOT,
                )
            )

    def alive(self) -> int:
        """Processes still running."""
        return sum(p.poll() is None for p in self.processes)

    def stop(self) -> None:
        """SIGTERM: each finishes its running jobs within the grace time or hands them back."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=self.settings.shutdown_grace_s + 15)
            except subprocess.TimeoutExpired:
                process.kill()
