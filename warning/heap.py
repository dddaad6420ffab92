"""Keep the garbage collector's full passes short in long-running processes.

A started worker holds hundreds of thousands of objects that live as long as it does
(imported modules, the rule pack, the CAP schemas, grid geometry, Faust's machinery). A
generation-2 collection walks all of them: measured at 60-105 ms in the Faust worker and a
consumer, a stall every few seconds that a warning in flight waits out. Moving them to the
permanent generation once the process is up (``gc.freeze``) leaves the collector only
what was made since, so a full pass costs about a millisecond.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, then exempt every surviving object from future collections."""
    gc.collect()
    gc.freeze()
