"""The front doors agree with each other: Makefile targets name real Snakemake rules, README's `make`
commands are Makefile targets. (A renamed rule once left `make validate` failing.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rules() -> set[str]:
    files = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
    return {m for f in files for m in re.findall(r"^(?:rule|checkpoint)\s+(\w+)\s*:", f.read_text(), re.MULTILINE)}


def _make_targets() -> dict[str, str]:
    """target -> its recipe (the tab-indented lines under it)."""
    targets: dict[str, str] = {}
    current = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if match := re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line):
            current = match[1]
            targets[current] = ""
        elif line.startswith("\t") and current:
            targets[current] += line.strip() + "\n"
    return targets


def test_every_snakemake_call_in_the_makefile_names_a_rule() -> None:
    rules = _rules()
    calls = {target: re.findall(r"\$\(SNAKEMAKE\)\s+(?:-\S+\s+)*(\w+)", recipe)
             for target, recipe in _make_targets().items()}
    called = {target: names for target, names in calls.items() if names}
    assert {"ingest", "process", "db", "all", "validate", "options"} <= set(called)
    missing = {target: [n for n in names if n not in rules] for target, names in called.items()}
    assert not {t: n for t, n in missing.items() if n}, f"Makefile calls unknown rules; rules are {sorted(rules)}"


def test_readme_make_commands_are_makefile_targets() -> None:
    readme = (ROOT / "README.md").read_text()
    used = set(re.findall(r"^\s*(?:\$ )?make ([a-z][\w-]*)", readme, re.MULTILINE))
    assert {"demo", "test", "ingest", "process", "db", "validate"} <= used
    assert used <= set(_make_targets()), sorted(used - set(_make_targets()))
