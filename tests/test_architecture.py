"""The layout's rules, checked: dependencies point down, only entry points know the web and CLI frameworks,
heavy libraries stay out of the light import path, and every setting is documented."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from appliance.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "appliance"

# Top row first. A module may import from its own row or any row below it, never from a row above.
ROWS: list[set[str]] = [
    {"cli", "web", "console", "widget", "tasks"},
    {"escalation", "retention", "analytics", "instance"},
    {"conversations", "answering", "knowledge", "retrieval", "webhooks"},
    {"auth", "audit", "inference", "redaction"},
    {"store", "crypto", "metrics"},
    {"config", "paths", "errors", "logs"},
]
ENTRY_POINTS = ROWS[0]
FRAMEWORKS = {"fastapi", "starlette", "click", "jinja2", "huey", "uvicorn"}
HEAVY = ["torch", "transformers", "llama_cpp", "faiss", "onnxruntime", "sentence_transformers"]


def _row(concept: str) -> int:
    for index, row in enumerate(ROWS):
        if concept in row:
            return index
    raise AssertionError(f"appliance/{concept} is in no row of the layout: add it to ROWS")


def _concept(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE]


def test_dependencies_point_down() -> None:
    violations = []
    for path in _modules():
        mine = _row(_concept(path))
        for line, name in _imports(path):
            parts = name.split(".")
            if parts[0] != "appliance" or len(parts) < 2:
                continue
            theirs = _row(parts[1])
            if theirs < mine:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {name} (a row above)")
    assert violations == []


def test_only_entry_points_import_frameworks() -> None:
    violations = []
    for path in _modules():
        if _concept(path) in ENTRY_POINTS:
            continue
        for line, name in _imports(path):
            if name.split(".")[0] in FRAMEWORKS:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert violations == []


def test_web_import_stays_light() -> None:
    code = (
        "import sys, json, appliance.web.app, appliance.cli.main; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    missing = [
        name for name in Settings.model_fields if f"`{name}`" not in doc or f"`APPLIANCE_{name.upper()}`" not in doc
    ]
    assert missing == []
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no help text"


def test_error_codes_are_unique() -> None:
    from appliance import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ApplianceError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
