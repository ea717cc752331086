"""MkDocs hook: the overhead bench's charts, served from where `make bench` writes them.

bench/results/overhead-*.png are kept in git (.gitignore) and shown on the performance
page; adding them to the build as files keeps one copy, the one the bench refreshes.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

CHARTS = ("bench/results/overhead-columns.png", "bench/results/overhead-rows.png")


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add each chart at its repository path, so docs/performance.md links it as such."""
    project_root = Path(config.config_file_path).parent
    for chart in CHARTS:
        if not (project_root / chart).is_file():
            raise PluginError(f"{chart} is missing: run `make bench` or restore it from git")
        files.append(File(chart, str(project_root), config.site_dir, config.use_directory_urls))
    return files
