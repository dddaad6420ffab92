"""Keep the garbage collector's passes few and short in long-running processes.

A started worker holds hundreds of thousands of objects that live as long as it does
(imported modules, the rule pack, the CAP schemas, grid geometry, Faust's machinery). A
generation-2 collection walks all of them: measured at 60-105 ms in the Faust worker and a
consumer, a stall every few seconds that a warning in flight waits out. Moving them to the
permanent generation once the process is up (``gc.freeze``) leaves the collector only
what was made since.

What is made since is the work: in a storm the worker keeps a state per alert and a window
per station, tens of thousands of lists and dicts, and every young collection moves the
survivors on until a full pass walks them all again. At Python's threshold (a young
collection every 700 allocations) a 20,000-alert burst spent 1.1 s of the worker's 7.4 s of
CPU in the collector, twelve full passes of up to 125 ms among them; with a collection every
20,000 allocations (``WARNING_GC_THRESHOLD``) most short-lived objects are freed by their
reference counts before a collection looks at them: 0.23 s, one full pass
(README *Performance*). Reference cycles still go at the next young collection.
"""

from __future__ import annotations

import gc

PYTHON_THRESHOLD = 700


def settle(threshold: int = PYTHON_THRESHOLD) -> None:
    """Collect once, exempt every surviving object from future collections, and collect
    the young generation every ``threshold`` allocations from now on."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
