"""The event loop the long-running processes choose, and the bench's profile summaries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from warning import eventloop
from warning.bench.profile import read, summary, top
from warning.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def default_policy() -> Iterator[None]:
    yield
    asyncio.set_event_loop_policy(None)  # the next test gets the standard loop again


async def _loop_kind() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_uvloop_is_the_default_and_asyncio_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().event_loop == "uvloop"
    assert eventloop.run(_loop_kind(), "uvloop") == "uvloop"
    assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)
    asyncio.set_event_loop_policy(None)
    assert eventloop.run(_loop_kind(), "asyncio") == "asyncio"
    monkeypatch.setenv("WARNING_EVENT_LOOP", "asyncio")
    assert load_settings().event_loop == "asyncio"


def test_an_unknown_event_loop_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNING_EVENT_LOOP", "trio")
    with pytest.raises(ConfigError, match=r"event_loop \(env WARNING_EVENT_LOOP\)"):
        load_settings()


def test_a_profile_names_the_frames_that_held_the_samples(tmp_path: Path) -> None:
    raw = tmp_path / "consumer.txt"  # py-spy's raw format: root frame first, a count per stack
    raw.write_text(
        "main (/work/p/warning/cli.py:120);render_cap (/work/p/warning/cap/render.py:40);"
        "tostring (/v/lib/python3.11/site-packages/lxml/etree.py:1) 30\n"
        "main (/work/p/warning/cli.py:120);_send (/work/p/consumers/channels/grid_webhook.py:60);"
        "write (/v/lib/python3.11/asyncio/selector_events.py:9) 10\n"
        "select (/v/lib/python3.11/selectors.py:4) 60\n"
        "not a stack line\n")
    stacks = read(raw)
    assert sum(stacks.values()) == 100
    own, under = top(stacks)
    assert own == [("select (selectors.py)", 60.0), ("tostring (lxml/etree.py)", 30.0),
                   ("write (asyncio/selector_events.py)", 10.0)]
    assert under == [("main (warning/cli.py)", 40.0), ("render_cap (warning/cap/render.py)", 30.0),
                     ("_send (consumers/channels/grid_webhook.py)", 10.0)]
    text = summary("grid-0", raw)
    assert text.splitlines()[0] == f"profile grid-0: 100 samples ({raw})"
    assert " 30.0%  render_cap (warning/cap/render.py)" in text
