"""HiGHS MIPs in a process of their own, so that a solve can be stopped when its tier ends.

The HiGHS inside the OR-Tools 9.15 wheel cannot be stopped from outside: MathOpt's `SolveInterrupter` is ignored by
its HiGHS solver (`HighsSolver::Solve` does not read it; measured: interrupted 0.05 s in, the demo region's score
MIP returned after 21 s), it has no callbacks there, and the model builder and `pywraplp` have no interrupt for
HiGHS either. Its own time limit is checked too rarely (presolve and the root LP run on), so a MIP in a thread
outlived its tier and kept a core from the next one. Here a MIP runs in a worker process that is killed when the
caller stops it or its wall-clock limit passes; the call then returns at once, without a result.

A worker imports only OR-Tools (no numpy, no engine) and stays alive between solves, so only the first solve of a
process (or the first after a kill) waits for an interpreter to start; `warm()` starts one ahead. Requests and
results are MathOpt's own protocol buffers (`SolveRequest`, `SolveResponse`), length-prefixed on the worker's
stdin and stdout. A worker whose parent dies finishes the solve it is on (HiGHS's own time limit bounds it), then
reads end-of-file and exits.
"""

from __future__ import annotations

import atexit
import os
import select
import struct
import subprocess
import sys
import threading
import time
from typing import IO

from ortools.math_opt import callback_pb2, result_pb2, rpc_pb2

_HEADER = struct.Struct("<Q")
POLL_SECONDS = 0.02  # how often a waiting caller looks at its stop flag


class Stopped(Exception):
    """The solve was stopped (asked to, or past its wall-clock limit) and its worker killed."""


class WorkerDied(RuntimeError):
    """The worker process ended without an answer (killed from outside, or crashed)."""


class Worker:
    """One worker process: a HiGHS MIP at a time."""

    def __init__(self) -> None:
        # The worker imports this very module: the directory holding this `matching` goes first on its path.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "matching.solvers.highs_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def solve(self, request: rpc_pb2.SolveRequest, stop: threading.Event | None, kill_at: float) -> bytes:
        """The serialized `SolveResponse`; raises Stopped when `stop` is set or `kill_at` (monotonic) passes
        first (the worker is then killed), WorkerDied when the worker ended without an answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        payload = request.SerializeToString()
        try:
            self.process.stdin.write(_HEADER.pack(len(payload)) + payload)
            self.process.stdin.flush()
        except BrokenPipeError as exc:
            self.kill()
            raise WorkerDied("the HiGHS worker process ended") from exc
        out = self.process.stdout
        # The stop flag is read before each wait, not only after one: a fast solve on a warm worker answers within
        # the first wait, and a stop set before the call must still win over it.
        while True:
            if (stop is not None and stop.is_set()) or time.monotonic() > kill_at:
                self.kill()
                raise Stopped
            if select.select([out], [], [], POLL_SECONDS)[0]:
                break
        try:
            return _read(out)
        except EOFError as exc:
            self.kill()
            raise WorkerDied("the HiGHS worker process ended") from exc


_idle: list[Worker] = []
_lock = threading.Lock()


def _take() -> Worker:
    with _lock:
        while _idle:
            worker = _idle.pop()
            if worker.alive():
                return worker
    return Worker()


def _give_back(worker: Worker) -> None:
    with _lock:
        _idle.append(worker)


def warm() -> None:
    """Start a worker now (its interpreter and OR-Tools load while the caller does other work)."""
    with _lock:
        if not any(w.alive() for w in _idle):
            _idle.append(Worker())


@atexit.register
def _shut_down() -> None:
    with _lock:
        for worker in _idle:
            worker.kill()
        _idle.clear()


def solve(
    request: rpc_pb2.SolveRequest, *, stop: threading.Event | None = None, wall_limit: float = 3600.0
) -> result_pb2.SolveResultProto:
    """Solve in a worker process: MathOpt's result; raises Stopped when `stop` is set or `wall_limit` seconds pass
    before the result (the worker is killed, so no core is kept busy), WorkerDied when the worker ended without an
    answer, RuntimeError on a solver error."""
    kill_at = time.monotonic() + wall_limit
    worker = _take()
    data = worker.solve(request, stop, kill_at)
    _give_back(worker)
    response = rpc_pb2.SolveResponse.FromString(data)
    if response.status.code != 0:
        raise RuntimeError(f"HiGHS: {response.status.message}")
    return response.result


def _read(stream: IO[bytes]) -> bytes:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The worker's loop: a request in, a response out, until end-of-file."""
    from ortools.math_opt.core.python import solver

    while True:
        try:
            request = rpc_pb2.SolveRequest.FromString(_read(stdin))
        except EOFError:
            return
        response = rpc_pb2.SolveResponse()
        try:
            result = solver.solve(
                request.model,
                request.solver_type,
                request.initializer,
                request.parameters,
                request.model_parameters,
                None,
                callback_pb2.CallbackRegistrationProto(),
                None,
                None,
            )
            response.result.CopyFrom(result)
        except Exception as exc:  # a solver error goes back to the caller, which raises it
            response.status.code = 2  # UNKNOWN, in the google.rpc codes
            response.status.message = str(exc)
        payload = response.SerializeToString()
        try:
            stdout.write(_HEADER.pack(len(payload)) + payload)
            stdout.flush()
        except BrokenPipeError:
            return


if __name__ == "__main__":
    # The protocol gets its own copy of stdout; the solver's own prints, if any, go to stderr instead of into it.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(os.fdopen(0, "rb"), channel)
