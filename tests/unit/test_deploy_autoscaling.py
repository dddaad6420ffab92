"""KEDA's triggers in the Kubernetes overlays against the lanes the code writes
(deploy/check.py's unscaled_lanes; `make deploy-check` runs it on every rendered overlay)."""

from __future__ import annotations

from typing import Any

from tests.conftest import deploy_script

check = deploy_script("check.py")
TIERS = ("red", "orange", "yellow", "blue")


def overlay(shards: int | None, triggers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = {} if shards is None else {"WARNING_SHARD_LANES": str(shards)}
    return [{"kind": "ConfigMap", "metadata": {"name": "warning-env-5f7h2"}, "data": env},
            {"kind": "ScaledObject", "metadata": {"name": "warning-consumer-sms"},
             "spec": {"scaleTargetRef": {"name": "warning-consumer-sms"}, "triggers": triggers}}]


def stream(name: str, group: str = "warning:sms") -> dict[str, Any]:
    return {"type": "redis-streams", "metadata": {"stream": name, "consumerGroup": group, "lagCount": "500"}}


def depth(channel: str, tier: str) -> dict[str, Any]:
    query = f'max(warning_queue_depth{{channel="{channel}",tier="{tier}"}})'
    return {"type": "prometheus", "metadata": {"query": query, "threshold": "500"}}


def test_a_stream_per_lane_of_one_shard_covers_the_channel() -> None:
    assert check.unscaled_lanes(overlay(None, [stream(f"warning:q:{{sms:0}}:{t}") for t in TIERS])) == []


def test_the_lane_names_from_before_shard_lanes_are_refused_and_the_real_lanes_named() -> None:
    problems = check.unscaled_lanes(overlay(None, [stream(f"warning:q:{{sms}}:{t}") for t in TIERS]))
    assert "warning-consumer-sms: 'warning:q:{sms}:red' is not one of sms's lanes" in problems
    assert "warning-consumer-sms: no trigger watches lane 'warning:q:{sms:0}:red' (WARNING_SHARD_LANES=1)" in problems
    assert len(problems) == 8


def test_more_shard_lanes_than_triggers_names_each_unwatched_lane() -> None:
    problems = check.unscaled_lanes(overlay(3, [stream(f"warning:q:{{sms:0}}:{t}") for t in TIERS]))
    assert sorted(problems) == sorted(f"warning-consumer-sms: no trigger watches lane 'warning:q:{{sms:{s}}}:{t}' "
                                      "(WARNING_SHARD_LANES=3)" for s in (1, 2) for t in TIERS)


def test_a_queue_depth_query_per_tier_covers_every_shard_lane() -> None:
    assert check.unscaled_lanes(overlay(6, [depth("sms", t) for t in TIERS])) == []
    missing = check.unscaled_lanes(overlay(6, [depth("sms", t) for t in TIERS[:3]]))
    assert len(missing) == 6 and all(":blue'" in p for p in missing)


def test_a_query_on_another_channel_a_wrong_group_and_an_unknown_trigger_are_named() -> None:
    triggers = [depth("push", "red"), *(depth("sms", t) for t in TIERS[1:]),
                stream("warning:q:{sms:0}:red", group="sms"), {"type": "cpu", "metadata": {"value": "80"}}]
    problems = check.unscaled_lanes(overlay(1, triggers))
    assert "warning-consumer-sms: a query on push's queue scales sms's consumers" in problems
    assert "warning-consumer-sms: consumerGroup 'sms', the group is 'warning:sms'" in problems
    assert any(p.startswith("warning-consumer-sms: a cpu trigger this check does not know") for p in problems)
    assert "warning-consumer-sms: 'warning:q:{push:0}:red' is not one of sms's lanes" in problems
