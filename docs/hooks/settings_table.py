"""MkDocs hook: the configuration page's table of settings, built from `app.settings.Settings`.

docs/configuration.md holds the marker below; each build replaces it with one row per
field (environment variable, default, accepted values, description), so the page cannot
drift from the code. A page without the marker fails the build.
"""

from __future__ import annotations

import html
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from pydantic.fields import FieldInfo

MARKER = "<!-- settings-table -->"
PAGE = "configuration.md"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the marker on the configuration page with the settings table."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"docs/{PAGE} lost its marker {MARKER}: the settings table has no place")
    return markdown.replace(MARKER, render_settings_table(Path(config.config_file_path).parent))


def render_settings_table(project_root: Path) -> str:
    """One Markdown row per `Settings` field, in the class's order."""
    if str(project_root) not in sys.path:
        sys.path.insert(0, str(project_root))
    from app.settings import Settings

    rows = [
        "| variable | default | accepted | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        cells = [f"`{name.upper()}`", format_default(name, field.default)]
        cells += [format_accepted(field), escape(field.description or "")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def format_default(name: str, default: Any) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if default == "":
        return "empty"
    text = f"`{default}`"
    if name.endswith("_bytes") and isinstance(default, int) and default % 1024 == 0:
        kib = default // 1024
        text += f" ({kib // 1024} MiB)" if kib % 1024 == 0 else f" ({kib} KiB)"
    return text


def format_accepted(field: FieldInfo) -> str:
    """What the field's type and constraints accept, as pydantic checks it at start-up."""
    choices = literal_choices(field.annotation)
    parts = []
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge):
            parts.append(f"≥ {constraint.ge}")
        elif isinstance(constraint, annotated_types.Gt):
            parts.append(f"> {constraint.gt}")
        elif isinstance(constraint, annotated_types.Le):
            parts.append(f"≤ {constraint.le}")
        elif isinstance(constraint, annotated_types.Lt):
            parts.append(f"< {constraint.lt}")
        elif getattr(constraint, "pattern", None):
            alternatives = re.fullmatch(r"\^\(([\w|]+)\)\$", constraint.pattern)
            if alternatives:
                choices = alternatives[1].split("|")
            else:  # shown as itself, its pipes kept inside the table cell
                code = html.escape(constraint.pattern).replace("|", "&#124;")
                parts.append(f"matches <code>{code}</code>")
    if choices:
        kind = "one of " + " ".join(f"`{choice}`" for choice in choices)
    else:
        kind = type_name(field.annotation)
    return ", ".join([kind, *parts])


def literal_choices(annotation: Any) -> list[str]:
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return [str(arg) for arg in typing.get_args(annotation)]
    if len(args) == 1 and typing.get_origin(args[0]) is typing.Literal:
        return [str(arg) for arg in typing.get_args(args[0])]
    return []


def type_name(annotation: Any) -> str:
    """`int`, `float`, `bool`, `str`; an optional type reads as the type, unset allowed."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return " or ".join(type_name(arg) for arg in args)
    return getattr(annotation, "__name__", str(annotation))


def escape(text: str) -> str:
    """Keep a table cell one cell: pipes inside a description would split it."""
    return text.replace("|", "\\|").replace("\n", " ")
