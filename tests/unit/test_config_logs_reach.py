from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from warning import reach
from warning.config import ConfigError, load_settings
from warning.keys import Keys
from warning.logs import configure_logging, mask_phone
from warning.models import Tier, delivery_id


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNING_API_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"environment: field api_port \(env WARNING_API_PORT\)"):
        load_settings()


def test_bad_file_value_names_the_file_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARNING_REDIS_URL", raising=False)  # the environment would win over the file
    path = tmp_path / "warning.yaml"
    path.write_text("redis_url: localhost:6379\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value) and "field redis_url" in str(err.value)


def test_unknown_file_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "warning.yaml"
    path.write_text("kafka_bootstrapp: x:1\n")
    with pytest.raises(ConfigError, match="unknown field"):
        load_settings(path)


def test_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "warning.yaml"
    path.write_text("partitions: 8\napi_port: 9000\n")
    monkeypatch.setenv("WARNING_PARTITIONS", "3")
    settings = load_settings(path)
    assert (settings.partitions, settings.api_port) == (3, 9000)


def test_keys_carry_prefix_and_hash_tags() -> None:
    keys = Keys("p")
    assert keys.queue("sms", Tier.red) == "p:q:{sms:0}:red"
    assert keys.enqueued("a1", 2, "sms") == "p:enq:{sms:0}:a1:2"
    assert delivery_id("a1", 2, "sms", "r9") == "a1.v2.sms.r9"
    assert keys.delivery("a1.v2.sms.r9") == "p:delivery:{sms:0}:a1.v2.sms.r9"
    sharded = Keys("p", shards=8)
    lanes = {sharded.shard(f"res-{n}") for n in range(200)}
    assert lanes == set(range(8))  # every lane gets recipients
    shard = sharded.shard("r9")
    assert sharded.delivery("a1.v2.sms.r9") == f"p:delivery:{{sms:{shard}}}:a1.v2.sms.r9"
    assert sharded.queue("sms", Tier.red, shard).startswith(f"p:q:{{sms:{shard}}}")


def test_logs_are_json_with_masked_phones_and_no_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    structlog.get_logger().info("delivery_sent", delivery_id="d1", phone="+8613812345678", token="s3cret")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["phone"] == "+86138****5678" and line["token"] == "[redacted]" and line["delivery_id"] == "d1"
    assert mask_phone("12345") == "*****"
    structlog.reset_defaults()


def test_reach_percentiles_within_five_percent() -> None:
    histogram: dict[int, int] = {}
    for ms in range(1, 1001):  # 1 ms .. 1 s, uniform
        b = reach.bucket(ms / 1000)
        histogram[b] = histogram.get(b, 0) + 1
    p50, _, p99 = reach.percentiles(histogram)
    assert p50 is not None and abs(p50 - 0.5) / 0.5 < 0.05
    assert p99 is not None and abs(p99 - 0.99) / 0.99 < 0.05
    assert reach.percentiles({}) == [None, None, None]


def test_an_old_directory_with_people_says_where_people_go_now(tmp_path: Path) -> None:
    from warning.targeting.directory import DirectoryError, load_directory

    old = tmp_path / "directory.yaml"
    old.write_text("city: {code: '440300', name: x}\npeople: []\n")
    with pytest.raises(DirectoryError, match="people no longer belong in the directory file: load people with"):
        load_directory(old)


def test_replication_problems_name_topic_setting_and_the_fix() -> None:
    from warning.topics import replication_problems

    found = {"p.warning.alerts": (3, 2), "p.feeds.cap": (1, 1), "p-alert-lifecycle-changelog": (3, 1)}
    assert replication_problems(found, 3, 2) == [
        "topic p-alert-lifecycle-changelog has min.insync.replicas=1 but WARNING_MIN_INSYNC_REPLICAS is 2: "
        "kafka-configs.sh --alter --entity-type topics --entity-name p-alert-lifecycle-changelog "
        "--add-config min.insync.replicas=2",
        "topic p.feeds.cap has 1 replica(s) but WARNING_REPLICATION_FACTOR is 3: add replicas with "
        "kafka-reassign-partitions.sh, or use a new WARNING_TOPIC_PREFIX",
        "topic p.feeds.cap has min.insync.replicas=1 but WARNING_MIN_INSYNC_REPLICAS is 2: kafka-configs.sh "
        "--alter --entity-type topics --entity-name p.feeds.cap --add-config min.insync.replicas=2"]
    assert replication_problems(found, 1, 1) == []


def test_min_insync_replicas_above_the_copies_is_refused_at_startup() -> None:
    with pytest.raises(ConfigError, match="min_insync_replicas \\(3\\) cannot exceed replication_factor \\(2\\)"):
        load_settings(replication_factor=2, min_insync_replicas=3)
