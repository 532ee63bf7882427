"""The package's shape: which modules may import the commands, and the README's layout section."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "interp"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_only_cli_commands_and_study_import_the_commands():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "cli.py" or rel.startswith(("commands/", "study/")):
            continue
        if any(m == "interp.commands" or m.startswith("interp.commands.") for m in _imports(path)):
            offenders.append(rel)
    assert not offenders, f"modules outside cli/commands/study import interp.commands: {offenders}"


def test_commands_do_not_import_the_study():
    offenders = [
        p.name
        for p in (PACKAGE / "commands").glob("*.py")
        if any(m.startswith("interp.study") for m in _imports(p))
    ]
    assert not offenders, offenders


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("interp"):
                private = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
                if private:
                    offenders.append(f"{path.relative_to(PACKAGE)}: {private}")
    assert not offenders, offenders


def test_readme_layout_names_every_module_and_package():
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout") : text.index("## Development")]
    named = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:\.py|/)", layout))
    missing = []
    for entry in sorted(PACKAGE.iterdir()):
        skip = entry.name.startswith("_") or entry.name == "resources"
        is_module = entry.suffix == ".py" or (entry.is_dir() and (entry / "__init__.py").exists())
        if not skip and is_module and entry.stem not in named:
            missing.append(entry.name)
    for entry in sorted((PACKAGE / "causal").glob("*.py")):
        if not entry.name.startswith("_") and entry.stem not in named:
            missing.append(f"causal/{entry.name}")
    assert not missing, f"README layout section does not name: {missing}"
