"""The docs: the guide builds as a site with every link and anchor valid; README's links resolve.

`mkdocs build --strict` (mkdocs.yml) fails on a link to a missing page or repository file and on
a missing anchor. README.md is not part of the site (it links into it the way GitHub shows the
repository), so its links are checked here. The manifests in both are applied by
tests/e2e/test_docs.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)
# An abbreviated or full commit hash: 7-40 hex digits with at least one digit and one letter.
HASH = re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


def _anchors(page: Path) -> set[str]:
    """The ids of a page's headings, as the site (Python-Markdown's toc) makes them."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slugify(re.sub(r"[`*]", "", h), "-") for h in HEADING.findall(text)}


def test_site_builds_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    for page in GUIDE.glob("*.md"):
        assert (tmp_path / "guide" / page.stem / "index.html").is_file() or page.stem == "index"
    assert (tmp_path / "guide" / "index.html").is_file()


def test_readme_links_resolve() -> None:
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    links = LINK.findall(text)
    assert links, "README.md has no links"
    broken = []
    for target in links:
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue
        path = (README.parent / unquote(parts.path)).resolve() if parts.path else README
        if not path.exists() or not path.is_relative_to(ROOT):
            broken.append(f"{target}: no such file")
        elif parts.fragment and path.suffix == ".md" and parts.fragment not in _anchors(path):
            broken.append(f"{target}: no heading #{parts.fragment} in {path.relative_to(ROOT)}")
    assert not broken, "README.md links that do not resolve:\n" + "\n".join(broken)


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines: move detail into docs/guide/"
    first_block = lines[lines.index("```sh") + 1 : lines.index("```", lines.index("```sh") + 1)]
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]


@pytest.mark.parametrize(
    "page", [README, *sorted(GUIDE.glob("*.md"))], ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_commit_hashes(page: Path) -> None:
    found = HASH.findall(page.read_text(encoding="utf-8"))
    assert not found, f"commit hashes in {page.relative_to(ROOT)}, name the change: {found}"
