"""MkDocs hook: the failure drills page's tables, built from the reports `make drill` wrote.

docs/drills.md holds the markers below; each build replaces them with the drills of
drills/results/latest.json and the cold starts of drills/results/cold-start.json, so the
page shows the figures of the last run, never copies of them. A missing marker or report
fails the build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

PAGE = "drills.md"
DRILLS_MARKER = "<!-- drills-table -->"
COLD_START_MARKER = "<!-- cold-start-table -->"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    results = Path(config.config_file_path).parent / "drills" / "results"
    for marker in (DRILLS_MARKER, COLD_START_MARKER):
        if marker not in markdown:
            raise PluginError(f"docs/{PAGE} lost its marker {marker}")
    drills = _read(results / "latest.json")
    cold_start = _read(results / "cold-start.json")
    return markdown.replace(DRILLS_MARKER, render_drills(drills)).replace(
        COLD_START_MARKER, render_cold_start(cold_start)
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PluginError(f"{path}: {error}") from None
    return report


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g} s"


def _met(value: bool) -> str:
    return "yes" if value else "**no**"


def _load(machine: dict[str, Any]) -> str:
    """The load averages the run recorded (reports before they were recorded have none)."""
    if "load_average_start" not in machine:
        return ""
    start, end = (
        "/".join(f"{load:g}" for load in machine[key])
        for key in ("load_average_start", "load_average_end")
    )
    return f", load average (1/5/15 min) {start} at the start and {end} at the end"


def render_drills(report: dict[str, Any]) -> str:
    prometheus = report["prometheus"]
    waits = report["waits"]
    lines = [
        f"`{report['command']}`, started {report['started_utc']} on "
        f"{report['machine']['cpus']} CPUs ({report['machine']['platform']}, Python "
        f"{report['machine']['python']}{_load(report['machine'])}); Prometheus scraping every "
        f"{prometheus['scrape_interval']} and evaluating every "
        f"{prometheus['evaluation_interval']}, Alertmanager's group_wait "
        f"{report['alertmanager_group_wait']}; a steady client sending "
        f"{report['client']['requests_per_second']:g} requests/s of "
        f"{report['client']['rows_per_request']} rows. A drill waits "
        f"{waits['detect_seconds']:g} s for an alert, then recovers; it waits "
        f"{waits['recover_seconds']:g} s from the injection for correct answers.",
        "",
        "| failure | alerts that fired (s after injection) | MTTD | recovery | MTTR "
        "| failed / sent | MTTD ≤ 60 s | MTTR ≤ 300 s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for drill in report["drills"]:
        fired = ", ".join(f"`{name}` {at:g}" for name, at in drill["alerts_fired"].items())
        cells = [
            f"**{drill['name']}**: {drill['failure']}",
            fired or "none",
            _seconds(drill["mttd_seconds"]),
            drill["recovery"],
            _seconds(drill["mttr_seconds"]),
            f"{drill['failed_requests']} / {drill['requests']}",
            _met(drill["mttd_met"]),
            _met(drill["mttr_met"]),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    notes = [
        f"- **{drill['name']}**: {note}" for drill in report["drills"] for note in drill["notes"]
    ]
    if notes:
        lines += ["", "What the drills noted:", "", *notes]
    return "\n".join(lines)


def render_cold_start(report: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"`{report['command']}`; the image built in {report['image_build_seconds']:g} s.",
            "",
            "| model | runs (s) | median |",
            "| --- | --- | --- |",
            f"| baked into the image | {', '.join(map(str, report['baked_seconds']))} "
            f"| {report['baked_median_seconds']:g} s |",
            f"| fetched from the registry at start | "
            f"{', '.join(map(str, report['fetched_seconds']))} "
            f"| {report['fetched_median_seconds']:g} s |",
        ]
    )
