"""Test data carried by the repository (a clone must test itself: nothing beside it is read)."""

from pathlib import Path

DATA = Path(__file__).resolve().parent
CAP_CORPUS = DATA / "cap"
