"""The suite refuses to read beside the checkout (a clone alone must pass `make test`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PROBE = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.conftest import refuse_reads_beside
root = Path({root!r})
refuse_reads_beside(root)
print((root / "inside.txt").read_text())
try:
    (root.parent / "shared" / "corpus.txt").read_text()
except PermissionError as exc:
    print("refused:", exc)
try:
    list((root.parent / "sibling").iterdir())
except PermissionError as exc:
    print("refused listing")
"""


def test_a_read_beside_the_checkout_fails_and_one_inside_works(tmp_path: Path) -> None:
    root = tmp_path / "clone"
    root.mkdir()
    (root / "inside.txt").write_text("mine")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "corpus.txt").write_text("not mine")
    (tmp_path / "sibling").mkdir()
    # the temporary and home directories stay readable, so here they must not be the probe's parent
    env = {**os.environ, "TMPDIR": str(root), "HOME": str(root)}
    out = subprocess.run([sys.executable, "-c", PROBE.format(repo=str(ROOT), root=str(root))], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    assert out[0] == "mine"
    assert out[1] == (f"refused: a test read {tmp_path}/shared/corpus.txt, outside the repository {root}: "
                      "a clone must carry its own data (put it under tests/data/)")
    assert out[2] == "refused listing"


def test_the_cap_corpus_is_in_the_repository() -> None:
    from tests.data import CAP_CORPUS

    assert CAP_CORPUS.is_relative_to(ROOT)
    assert len(list(CAP_CORPUS.glob("*/*.cap"))) == 11 and len(list(CAP_CORPUS.glob("*/*.xml"))) == 5
