"""Run the pipeline's processes (Faust worker + one consumer per channel) and stop them cleanly."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from warning.config import CHANNELS, Settings

# Ports a test or bench hands to a process it starts are taken below Linux's ephemeral range
# (32768+, where the kernel picks every outgoing connection's source port): a port the
# kernel chose for a bind-to-0 check could be a Kafka or Redis client's source port by the
# time the child binds it, and the sandbox died of "address already in use" in CI
# (2026-12-04). 21001-21006 and 31001-31006 are the local Redis Cluster's, 26379 Sentinel's.
_PORTS = range(23_000, 30_000)
_handed_out: set[int] = set()


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A localhost port nothing listens on, outside the ephemeral range, never handed out twice by this process."""
    for _ in range(500):
        port = random.choice(_PORTS)
        if port != 26379 and port not in _handed_out and bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1}")


def env_for(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process use these settings' namespace and stores."""
    return {
        "WARNING_TOPIC_PREFIX": settings.topic_prefix, "WARNING_APP_ID": settings.app_id,
        "WARNING_REDIS_PREFIX": settings.redis_prefix, "WARNING_SINK_DIR": str(settings.sink_dir),
        "WARNING_WORKER_DATA_DIR": str(settings.worker_data_dir),
        "WARNING_PARTITIONS": str(settings.partitions), "WARNING_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "WARNING_REDIS_URL": settings.redis_url,
        "WARNING_REPLICATION_FACTOR": str(settings.replication_factor),
        "WARNING_MIN_INSYNC_REPLICAS": str(settings.min_insync_replicas),
        "WARNING_TABLE_STANDBY_REPLICAS": str(settings.table_standby_replicas),
        "WARNING_REDIS_WAIT_REPLICAS": str(settings.redis_wait_replicas),
        "WARNING_FANOUT_UNIT_RESIDENTS": str(settings.fanout_unit_residents),
        "WARNING_VISIBILITY_TIMEOUT_S": str(settings.visibility_timeout_s),
        "WARNING_WORKER_SESSION_TIMEOUT_S": str(settings.worker_session_timeout_s),
        "WARNING_PROVIDERS": settings.providers, "WARNING_API_PORT": str(settings.api_port),
        "WARNING_SANDBOX_PORT": str(settings.sandbox_port), "WARNING_PUBLIC_URL": settings.public_url,
        "WARNING_SMS_RECEIPT_TIMEOUT_S": str(settings.sms_receipt_timeout_s),
        "WARNING_SANDBOX_SMPP_PORT": str(settings.sandbox_smpp_port), "WARNING_SMS_PROVIDER": settings.sms_provider,
        **({"WARNING_SMPP_GATEWAYS_FILE": str(settings.smpp_gateways_file)} if settings.smpp_gateways_file else {}),
        **({"WARNING_CBC_URL": settings.cbc_url} if settings.cbc_url else {}),
        **({"WARNING_DIRECTORY_FILE": str(settings.directory_file)} if settings.directory_file else {}),
        **({"WARNING_RELEASE_POLICY_FILE": str(settings.release_policy_file)} if settings.release_policy_file else {}),
    }


def _die_with_parent() -> None:
    """Linux: SIGTERM this child when the parent dies, however it dies (no orphans)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_http(url: str, procs: Processes, timeout: float = 30.0) -> None:
    """Until ``url`` answers 200; fails early, naming the process, if one of ours died."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dead := procs.dead():
            raise RuntimeError(f"process exited during startup: {dead} (see {procs.log_dir})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s (see {procs.log_dir})")


class Processes:
    """The pipeline's child processes; a context manager that always stops what it started."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, tuple[str, ...]] = {}

    def start(self, name: str, *args: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as log:  # the child has its own copy
            self.children[name] = subprocess.Popen([sys.executable, "-m", "warning", *args], stdout=log,
                                                   stderr=subprocess.STDOUT, env=self.env,
                                                   start_new_session=True, preexec_fn=_die_with_parent)
        self.commands[name] = args

    def restart(self, name: str) -> int:
        """Start a process again with the command it was started with; its new pid."""
        self.start(name, *self.commands[name])
        return self.children[name].pid

    def exit_code(self, name: str) -> int | None:
        return self.children[name].poll()

    def start_pipeline(self, settings: Settings, api: bool = True) -> None:
        """The Faust worker, a consumer per channel, the API and (if a channel uses it) the
        provider sandbox; returns once the HTTP servers answer."""
        if any(settings.provider_mode(ch) == "sandbox" for ch in CHANNELS):
            self.start("sandbox", "sandbox")
            wait_http(f"{settings.sandbox_url}/healthz", self)
        if api:
            self.start("api", "api")
            wait_http(f"http://127.0.0.1:{settings.api_port}/healthz", self)
        self.start("worker", "worker")
        self.start("escalator", "escalator")
        for channel in CHANNELS:
            self.start(f"consumer-{channel}", "consumer", channel)

    def kill(self, name: str) -> None:
        """SIGKILL one process, as a crash would (tests and chaos runs)."""
        proc = self.children.pop(name)
        proc.kill()
        proc.wait()

    def dead(self) -> list[str]:
        return [name for name, proc in self.children.items() if proc.poll() is not None]

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.children.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
