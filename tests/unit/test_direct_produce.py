"""The lifecycle's records handed straight to Faust's producer (warning/pipeline/produce.py).

The records reach real Kafka and are recovered from it in the acceptance tests (a worker
killed -9 keeps its alert state); here: that the bytes are the ones Faust's own
path would have written, so a table recovered from them is the table that was written."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import orjson

from warning.pipeline.produce import DirectProducer


class RecordingProducer:
    """Faust's producer interface as DirectProducer calls it, keeping what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, int | None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None,
                   timestamp: float | None, headers: Any) -> asyncio.Future[str]:
        self.sent.append((topic, key, value, partition))
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done.set_result("acknowledged")
        return done


def _app() -> tuple[faust.App, RecordingProducer]:
    app = faust.App("direct-produce-test", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)
    recording = RecordingProducer()
    app._producer = recording  # the app's producer, as Faust builds it lazily
    return app, recording


def test_a_changelog_record_is_the_one_the_table_itself_would_write() -> None:
    app, recording = _app()
    table = app.Table("alert-lifecycle", default=dict, partitions=8)
    state = {"alert_id": "gas-1", "tier": "orange", "identifiers": [["a", "2026-12-03T08:00:00+00:00"]],
             "cause": "站 7: gas_lel = 25 (orange) & <b>"}

    async def main() -> tuple[Any, Any]:
        acknowledged = await (await DirectProducer(app.producer).changelog(table, 5, "gas:grid-7", state))
        faust_own = table.changelog_topic.as_future_message(  # what Table.send_changelog buffers
            key="gas:grid-7", value=state, partition=5, key_serializer=table.key_serializer,
            value_serializer=table.value_serializer).message
        return acknowledged, faust_own

    acknowledged, faust_own = asyncio.run(main())
    assert acknowledged == "acknowledged"
    [(topic, key, value, partition)] = recording.sent
    assert (topic, key, value, partition) == (table.changelog_topic.get_topic_name(), faust_own.key,
                                              faust_own.value, 5)
    assert topic == "direct-produce-test-alert-lifecycle-changelog"
    assert orjson.loads(value) == state and orjson.loads(key) == "gas:grid-7"  # the tables' codec is JSON


def test_a_raw_record_goes_as_given_to_its_topic_and_partition() -> None:
    app, recording = _app()

    async def main() -> None:
        await DirectProducer(app.producer).send("warning.alerts", b"gas:grid-7", b'{"version":2}')
        await DirectProducer(app.producer).send("warning.signals", b"k", b"[]", 3)

    asyncio.run(main())
    assert recording.sent == [("warning.alerts", b"gas:grid-7", b'{"version":2}', None),
                              ("warning.signals", b"k", b"[]", 3)]

