"""MkDocs hook: the V2 protocol page's conformance tables, built from the conformance test's
own definitions.

docs/v2-protocol.md holds the marker below; each build replaces it with every model and
case tests/conformance/test_v2_conformance.py sends to MLServer and to ours, each with the
answer the test requires (alike, or the allowed difference), and the differences of
tests/conformance/v2_allowlist.py with their reasons. The test fails when MLServer or ours
answers otherwise, so the page says what the last green run checked. A page without the
marker fails the build.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

MARKER = "<!-- v2-conformance-table -->"
PAGE = "v2-protocol.md"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"docs/{PAGE} lost its marker {MARKER}: the conformance table")
    return markdown.replace(MARKER, render(Path(config.config_file_path).parent))


def render(project_root: Path) -> str:
    if str(project_root) not in sys.path:
        sys.path.insert(0, str(project_root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's import-time warnings about the zoo's hints
        from tests.conformance.test_v2_conformance import CASES
        from tests.conformance.v2_allowlist import V2_DIFFERENCES, v2_difference_for

    differences = {(model, case): v2_difference_for(model, case) for model, case in CASES}
    models: dict[str, list[str]] = {}
    for model, case in CASES:
        models.setdefault(model, []).append(case)
    lines = [
        f"{len(models)} models, {len(CASES)} cases "
        f"({sum(differences[m, c] is None for m, c in CASES)} answered alike):",
        "",
        "| model | answered alike | answered differently (see below) |",
        "| --- | --- | --- |",
    ]
    for model, cases in models.items():
        alike = [f"`{case}`" for case in cases if differences[model, case] is None]
        different = []
        for case in cases:
            difference = differences[model, case]
            if difference is not None:
                different.append(f"`{case}` ({difference.name})")
        lines.append(f"| `{model}` | {', '.join(alike)} | {', '.join(different)} |")
    lines += [
        "",
        "| difference | ours | MLServer | why |",
        "| --- | --- | --- | --- |",
    ]
    for difference in V2_DIFFERENCES:
        lines.append(
            f"| {difference.name} | {difference.ours} | {difference.mlserver} | "
            f"{difference.reason} |"
        )
    return "\n".join(lines)
