"""MkDocs hook: the benches' charts and the peers bench's report, served from where the
benches write them.

bench/results/overhead-*.png and peers.png are kept in git (.gitignore) and shown on the
performance pages; adding them to the build as files keeps one copy, the one the bench
refreshes. The same goes for bench/results/peers-latest.md, the report `make bench-peers`
prints: docs/peers.md holds a marker that each build replaces with it.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

CHARTS = (
    "bench/results/overhead-columns.png",
    "bench/results/overhead-rows.png",
    "bench/results/peers.png",
)
PEERS_PAGE = "peers.md"
PEERS_MARKER = "<!-- peers-report -->"
PEERS_REPORT = "bench/results/peers-latest.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add each chart at its repository path, so the pages link it as such."""
    project_root = Path(config.config_file_path).parent
    for chart in CHARTS:
        if not (project_root / chart).is_file():
            raise PluginError(f"{chart} is missing: run its bench or restore it from git")
        files.append(File(chart, str(project_root), config.site_dir, config.use_directory_urls))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """On the peers page, the marker becomes the last `make bench-peers` report."""
    if page.file.src_uri != PEERS_PAGE:
        return markdown
    report = Path(config.config_file_path).parent / PEERS_REPORT
    if PEERS_MARKER not in markdown:
        raise PluginError(f"docs/{PEERS_PAGE} lost its marker {PEERS_MARKER}")
    if not report.is_file():
        raise PluginError(f"{PEERS_REPORT} is missing: run `make bench-peers` or restore it")
    return markdown.replace(PEERS_MARKER, report.read_text())
