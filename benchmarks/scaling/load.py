"""The closed-loop load and the monitors of an autoscaling run: streamed chat requests whose
concurrency steps up and down, each recording when it was sent, when its first token came, which
replica served it (the x-rayvllm-replica header) and how it ended; Serve's replica states and the
CPU each process kind burned, sampled once a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import psutil

REPLICA_HEADER = "x-rayvllm-replica"


@dataclass(slots=True)
class Sample:
    """One request. Times are time.time() (epoch seconds), comparable with Ray's log stamps."""

    sent: float
    first_token: float = 0.0
    end: float = 0.0
    status: str = ""  # "200", another HTTP status, or "connect" / "timeout" / "stream" / ...
    replica: str = ""
    output_tokens: int = 0


@dataclass
class ClosedLoop:
    """`concurrency` users, each sending its next request as soon as the last one ended."""

    url: str
    model: str
    max_tokens: int
    samples: list[Sample] = field(default_factory=list)
    target: int = 0
    _users: list[asyncio.Task[None]] = field(default_factory=list)

    def body(self, n: int) -> bytes:
        return json.dumps(
            {
                "model": self.model,
                "max_tokens": self.max_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": f"request {n}: tell me about ray serve"}],
            }
        ).encode()

    async def one(self, session: aiohttp.ClientSession, n: int) -> None:
        sample = Sample(sent=time.time())
        self.samples.append(sample)
        try:
            async with session.post(
                self.url + "/v1/chat/completions",
                data=self.body(n),
                headers={"content-type": "application/json"},
            ) as reply:
                sample.replica = reply.headers.get(REPLICA_HEADER, "")
                if reply.status != 200:
                    await reply.read()
                    sample.status = str(reply.status)
                    return
                async for line in reply.content:
                    # Once the first token is in, only the usage chunk is worth parsing: the
                    # client shares 2 cores with the server, so it keeps its own work small.
                    if not line.startswith(b"data: {") or (
                        sample.first_token and b'"usage"' not in line
                    ):
                        continue
                    chunk = json.loads(line[6:])
                    if not sample.first_token and any(
                        c.get("delta", {}).get("content") for c in chunk.get("choices") or []
                    ):
                        sample.first_token = time.time()
                    if chunk.get("usage"):
                        sample.output_tokens = chunk["usage"]["completion_tokens"]
                sample.status = "200" if sample.output_tokens else "stream"
        except aiohttp.ClientConnectionError:
            sample.status = "connect"
        except TimeoutError:
            sample.status = "timeout"
        except (aiohttp.ClientError, ValueError):
            sample.status = "stream"
        finally:
            sample.end = time.time()

    async def user(self, session: aiohttp.ClientSession, index: int) -> None:
        n = 0
        while index < self.target:
            await self.one(session, index * 1_000_000 + n)
            n += 1

    async def run(self, steps: list[tuple[int, float]], marks: list[dict[str, Any]]) -> None:
        """Hold each (concurrency, seconds) step; a user beyond the target finishes its request
        and leaves, so stepping down never cuts a request."""
        timeout = aiohttp.ClientTimeout(total=300, sock_connect=10)
        connector = aiohttp.TCPConnector(limit=0)  # keep-alive, as an OpenAI client does
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            for concurrency, seconds in steps:
                self.target = concurrency
                marks.append({"t": time.time(), "concurrency": concurrency})
                self._users = [u for u in self._users if not u.done()]
                running = {int(u.get_name()) for u in self._users}
                for index in range(concurrency):
                    if index not in running:
                        task = asyncio.create_task(self.user(session, index), name=str(index))
                        self._users.append(task)
                print(
                    f"{time.strftime('%H:%M:%S')} concurrency {concurrency} for {seconds} s",
                    flush=True,
                )
                await asyncio.sleep(seconds)
            self.target = 0
            marks.append({"t": time.time(), "concurrency": 0})
            await asyncio.gather(*self._users)


class Monitor:
    """CPU seconds per process kind of the server's tree and of this client, once a second, in
    a thread. Replicas are labelled by PID; the controller log says later which PID is which."""

    def __init__(self, server_pid: int) -> None:
        self._root = psutil.Process(server_pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._procs: dict[int, psutil.Process] = {}
        self._last: dict[int, float] = {}
        self.cpu: list[dict[str, Any]] = []

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _label(self, proc: psutil.Process) -> str:
        if proc.pid == psutil.Process().pid:
            return "client"
        cmd = proc.cmdline()
        first = cmd[0] if cmd else proc.name()
        if first.startswith("ray::ServeReplica"):
            return f"replica pid {proc.pid}"
        if first.startswith("ray::"):
            return first.split(".")[0].removeprefix("ray::")[:40]
        if proc.pid == self._root.pid:
            return "rayvllm serve (driver)"
        if "haproxy" in proc.name():
            return "haproxy"
        return proc.name()[:40]

    def _cpu_delta(self) -> dict[str, float]:
        """CPU seconds each process kind used since the last sample, from per-PID counters, so
        a replica that stops takes only its own counter with it."""
        try:
            members = [self._root, *self._root.children(recursive=True), psutil.Process()]
        except psutil.NoSuchProcess:
            return {}
        delta: dict[str, float] = {}
        first_sample = not self._last  # the baseline; later, a new PID counts from its start
        for proc in members:
            proc = self._procs.setdefault(proc.pid, proc)  # cpu_times of one object per PID
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                now = times.user + times.system
                label = self._label(proc)
                before = self._last.get(proc.pid, now if first_sample else 0.0)
                delta[label] = delta.get(label, 0.0) + now - before
                self._last[proc.pid] = now
        return delta

    def _run(self) -> None:
        last = time.time()
        while not self._stop.wait(1.0):
            delta, now = self._cpu_delta(), time.time()
            self.cpu.append({"t": now, "cores": {k: v / (now - last) for k, v in delta.items()}})
            last = now


def samples_as_rows(samples: list[Sample]) -> list[dict[str, Any]]:
    return [asdict(s) for s in samples]
