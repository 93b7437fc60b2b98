"""The README stays true to the code: every setting is documented, every tool is in the table."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tools import CATALOGUE
from tools.core.settings import Settings
from tools.toolkit.declare import spec_of, tools_of

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _variable(name: str) -> str:
    field = Settings.model_fields[name]
    choices = getattr(field.validation_alias, "choices", None)
    return str(choices[0]).upper() if choices else f"PHOTO_MCP_{name.upper()}"


def test_every_setting_is_in_the_readme() -> None:
    settings_section = README[README.index("## Settings") :]
    missing = [
        _variable(name)
        for name in Settings.model_fields
        if name != "transport" and f"`{_variable(name)}" not in settings_section
    ]
    assert not missing, f"settings missing from the README's settings table: {missing}"


def test_every_tool_is_in_the_tool_table() -> None:
    table = README[README.index("## Tools") : README.index("## How results are delivered")]
    listed = set(re.findall(r"^\| `([a-z_]+)\(", table, flags=re.M)) | set(re.findall(r"/ `([a-z_]+)\(", table))
    declared = {spec_of(fn).name for name in CATALOGUE for fn in tools_of(importlib.import_module(name))}
    assert declared <= listed, f"tools missing from the README's tool table: {sorted(declared - listed)}"
