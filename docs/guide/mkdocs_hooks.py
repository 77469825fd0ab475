"""mkdocs hooks (mkdocs.yml `hooks:`): links from the docs to the repository's own files.

A page may link a file outside docs/ the way GitHub resolves it, e.g. `../../examples/web.yaml`
from docs/guide/. mkdocs only knows files under docs/, so such a link would fail `--strict`;
here each one that names an existing file of the repository is published under `repo/` in the
site, and one that names no file still fails the build. The site's root redirects to the guide.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files, InclusionLevel

LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)")


def on_files(files: Files, config: Any) -> Files:
    docs = Path(config["docs_dir"]).resolve()
    repo = docs.parent
    seen: set[str] = set()
    for page in docs.rglob("*.md"):
        src_uri = page.relative_to(docs).as_posix()
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith(("/", "mailto:")):
                continue
            uri = posixpath.normpath(posixpath.join(posixpath.dirname(src_uri), target))
            if not uri.startswith("../") or uri in seen:
                continue
            path = (docs / uri).resolve()
            if not path.is_file() or not path.is_relative_to(repo):
                continue  # left for mkdocs to report as not found
            seen.add(uri)
            f = File(
                uri,
                src_dir=None,
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
                dest_uri="repo/" + path.relative_to(repo).as_posix(),
                inclusion=InclusionLevel.NOT_IN_NAV,  # not excluded by the `.*` default
            )
            f.abs_src_path = str(path)
            files.append(f)
    return files


def on_post_build(config: Any) -> None:
    index = Path(config["site_dir"]) / "index.html"
    if not index.exists():
        index.write_text(
            '<!doctype html><meta charset="utf-8"><title>Greenlight</title>'
            '<meta http-equiv="refresh" content="0; url=guide/">'
            '<a href="guide/">The Greenlight guide</a>\n',
            encoding="utf-8",
        )
