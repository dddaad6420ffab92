"""GB/T 2260-style area codes: hierarchical, so "inside an area" is a prefix test.

City 440300 -> district 440305 -> township 440305001 -> grid 440305001001. The six-digit
codes are padded: province 440000 and city 440300 contain the districts 4403xx, so their
trailing zero pairs are not part of the prefix.
"""

from __future__ import annotations


def area_prefix(code: str) -> str:
    """The prefix every code inside an area starts with."""
    if len(code) == 6 and code.isdigit():
        while code.endswith("00") and len(code) > 2:
            code = code[:-2]
    return code


def inside(code: str, area: str) -> bool:
    """True when ``code`` is ``area`` or lies within it."""
    return code.startswith(area_prefix(area))


def covers(jurisdiction: str, area: str) -> bool:
    """An officer covers an area inside their jurisdiction, or one their jurisdiction lies in."""
    return inside(area, jurisdiction) or inside(jurisdiction, area)
