"""The docs site builds strictly (every page, link and API reference resolves), README links
every page, and no page points outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import ROOT

MKDOCS = str(Path(sys.executable).with_name("mkdocs"))


def test_mkdocs_build_is_strict_clean(tmp_path):
    result = subprocess.run(
        [MKDOCS, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    api = (tmp_path / "site/api/index.html").read_text()
    assert "run_search" in api and "UserError" in api  # docstrings rendered, not just headings


def _nav_pages() -> set[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *a: None)
    nav = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)["nav"]
    return {page for entry in nav for page in entry.values()}


def test_every_page_is_in_the_site_and_linked_from_readme():
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert _nav_pages() == pages
    readme = (ROOT / "README.md").read_text()
    for page in pages - {"index.md"}:
        assert f"](docs/{page})" in readme, page


def test_readme_and_docs_stay_inside_the_repository():
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for path in texts:
        assert not re.search(r"\.\./shared|/work/", path.read_text()), path
