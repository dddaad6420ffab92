#!/usr/bin/env python3
"""`make deploy-check`: everything under deploy/ checked without a cluster or a container engine.

1. Prometheus: `promtool check rules` and `promtool test rules` (Debian's prometheus).
2. Compose: `docker-compose config` (Debian's docker-compose validates without a daemon).
3. Kubernetes: each overlay rendered with `kubectl kustomize`, then validated against the
   API schemas with kubernetes-validate (strict; Strimzi's and KEDA's custom resources have
   no schema there and are only rendered), and its KEDA triggers held to the lanes
   warning/keys.py names for the overlay's WARNING_SHARD_LANES: a lane nobody scales on
   (or a trigger on a stream that is no lane) fails the check.
4. The image: this host has no container engine and cannot reach Docker Hub for the base
   image, so the Containerfile's stages are done as they would run in it — the project's
   wheel built, installed with its dependencies into a fresh virtualenv — and every role's
   `--help` and the health command are run from there.

Each step prints one line; the first failure stops with its output and exit 1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

import yaml

from warning.keys import Keys
from warning.models import WARNING_TIERS

ROOT = Path(__file__).resolve().parents[1]
ROLES = [["worker"], ["consumer", "sms"], ["consumer", "push"], ["consumer", "grid"], ["consumer", "cell_broadcast"],
         ["api"], ["escalator"],
         ["topics"], ["sandbox"], ["health"]]


class CheckFailed(Exception):
    pass


def run(what: str, cmd: list[str], cwd: Path = ROOT, stdin: bytes | None = None) -> bytes:
    result = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True)
    if result.returncode != 0:
        raise CheckFailed(f"{what}: {' '.join(cmd)} exited {result.returncode}\n"
                          f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}")
    print(f"ok  {what}")
    return result.stdout


def need(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if found is None:
        subprocess.run([sys.executable, str(ROOT / "deploy/local/stack.py"), "tools"], check=False)
        found = shutil.which(binary)
    if found is None:
        raise CheckFailed(f"{binary} is missing: apt-get install {package}")
    return found


def prometheus() -> None:
    promtool = need("promtool", "prometheus")
    rules = ROOT / "deploy/prometheus"
    run("prometheus rules are valid", [promtool, "check", "rules", "alerts.yml"], cwd=rules)
    run("prometheus rule unit tests pass", [promtool, "test", "rules", "alerts.test.yml"], cwd=rules)
    run("prometheus config is valid", [promtool, "check", "config", "--syntax-only", "prometheus.yml"], cwd=rules)


def compose() -> None:
    docker_compose = need("docker-compose", "docker-compose")
    for profile in ([], ["--profile", "sandbox"]):
        run(f"compose file is valid{' (sandbox profile)' if profile else ''}",
            [docker_compose, "-f", "deploy/compose/compose.yaml", *profile, "config", "-q"])


def kubernetes() -> None:
    kubectl = need("kubectl", "kubernetes-client")
    validate = str(Path(sys.executable).parent / "kubernetes-validate")
    for overlay in sorted((ROOT / "deploy/kubernetes/overlays").iterdir()):
        rendered = run(f"kustomize renders {overlay.name}",
                       [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)])
        with tempfile.NamedTemporaryFile("wb", suffix=".yaml") as out:
            out.write(rendered)
            out.flush()
            run(f"{overlay.name} validates against the Kubernetes API schemas",
                [validate, "--strict", "--quiet", "--no-warn", out.name])
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        if problems := unscaled_lanes(docs):
            raise CheckFailed(f"{overlay.name}'s autoscaling misses the queue lanes:\n  " + "\n  ".join(problems))
        scaled = sum(d.get("kind") == "ScaledObject" for d in docs)
        print(f"ok  {overlay.name}: KEDA watches every lane of its {scaled} autoscaled channels")


QUEUE_DEPTH = re.compile(r'max\(warning_queue_depth\{channel="(\w+)",tier="(\w+)"\}\)')
STREAM_TRIGGERS = ("redis-streams", "redis-cluster-streams")


def unscaled_lanes(docs: list[dict[str, Any]]) -> list[str]:
    """What is wrong with a rendered overlay's autoscaling: every lane of every autoscaled
    channel must be watched by a trigger (a stream trigger per lane, or a Prometheus trigger
    on the tier's warning_queue_depth, which sums the tier's shard lanes), and nothing else."""
    env: dict[str, str] = next((d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"
                and d["metadata"]["name"].startswith("warning-env")), {})
    keys = Keys(shards=int(env.get("WARNING_SHARD_LANES", "1")))
    problems: list[str] = []
    for scaled in (d for d in docs if d.get("kind") == "ScaledObject"):
        name = scaled["metadata"]["name"]
        channel = scaled["spec"]["scaleTargetRef"]["name"].removeprefix("warning-consumer-")
        watched: set[str] = set()
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger.get("metadata", {})
            if trigger["type"] in STREAM_TRIGGERS:
                if meta.get("consumerGroup") != keys.group(channel):
                    problems.append(f"{name}: consumerGroup {meta.get('consumerGroup')!r}, the group is "
                                    f"{keys.group(channel)!r}")
                watched.add(meta.get("stream", ""))
            elif trigger["type"] == "prometheus" and (depth := QUEUE_DEPTH.fullmatch(meta.get("query", ""))):
                if depth[1] != channel:
                    problems.append(f"{name}: a query on {depth[1]}'s queue scales {channel}'s consumers")
                watched |= {keys.queue(depth[1], depth[2], shard) for shard in range(keys.shards)}
            else:
                problems.append(f"{name}: a {trigger['type']} trigger this check does not know: {meta}")
        lanes = {keys.queue(channel, tier, shard) for tier in WARNING_TIERS for shard in range(keys.shards)}
        problems += [f"{name}: {stream!r} is not one of {channel}'s lanes" for stream in sorted(watched - lanes)]
        problems += [f"{name}: no trigger watches lane {lane!r} (WARNING_SHARD_LANES={keys.shards})"
                     for lane in sorted(lanes - watched)]
    return problems


def image() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wheels = Path(tmp) / "wheels"
        run("the image's build stage: the project's wheel",
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)])
        env_dir = Path(tmp) / "image"
        venv.create(env_dir, with_pip=True)
        python = str(env_dir / "bin" / "python")
        wheel = next(wheels.glob("warning_dispatch-*.whl"))
        run("the image's final stage: the wheel and its dependencies install",
            [python, "-m", "pip", "install", "-q", str(wheel), "-c", str(ROOT / "deploy" / "constraints.txt")])
        warning = str(env_dir / "bin" / "warning")
        for role in ROLES:
            run(f"warning {' '.join(role)} --help", [warning, *role, "--help"], cwd=Path(tmp))
        out = subprocess.run([warning, "health", "api"], cwd=tmp, capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "WARNING_API_PORT": "1"})
        if out.returncode != 1 or "api" not in out.stdout + out.stderr:
            raise CheckFailed(f"warning health api with no API should say so and exit 1: {out}")
        print("ok  warning health api reports an API that is down (exit 1)")


def main() -> int:
    try:
        prometheus()
        compose()
        kubernetes()
        image()
    except CheckFailed as exc:
        print(f"FAILED {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
