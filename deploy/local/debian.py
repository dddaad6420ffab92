"""Debian packages the local stack and the test session need, installed if missing (as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path


def apt_install(package: str, binary: str, fail: Callable[[str], Exception]) -> None:
    """Debian's package, installed if missing (as root); a clear error otherwise."""
    if shutil.which(binary) or Path(binary).exists():
        return
    if os.geteuid() != 0:
        raise fail(f"{binary} is missing: apt-get install {package}")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        result = subprocess.run(cmd, capture_output=True, text=True,
                                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if result.returncode != 0:
            raise fail(f"{' '.join(cmd)} failed:\n{result.stderr}")


def redis_server(fail: Callable[[str], Exception]) -> str:
    if shutil.which("redis-server"):
        return shutil.which("redis-server") or "/usr/bin/redis-server"
    apt_install("redis-server", "redis-server", fail)
    # Debian's package starts a system service on 6379; we run our own instance instead.
    subprocess.run(["service", "redis-server", "stop"], capture_output=True)
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def tools(fail: Callable[[str], Exception]) -> None:
    """Debian's Prometheus (promtool and the server, for deploy-check and the alerting test),
    docker-compose (validates the compose file without a daemon) and kubectl (renders the
    Kustomize overlays) if this machine has none."""
    apt_install("prometheus", "promtool", fail)
    apt_install("docker-compose", "docker-compose", fail)
    apt_install("kubernetes-client", "kubectl", fail)
    print(f"promtool: {shutil.which('promtool')}, docker-compose: {shutil.which('docker-compose')}, "
          f"kubectl: {shutil.which('kubectl')}")


def browser(fail: Callable[[str], Exception]) -> None:
    """Debian's Chromium for the console's browser test (Playwright drives the system one)."""
    apt_install("chromium", "chromium", fail)
    apt_install("fonts-wqy-zenhei", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", fail)  # the console is bilingual
    print(f"chromium: {shutil.which('chromium')}")
