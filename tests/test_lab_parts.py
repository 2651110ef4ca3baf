"""The lab package itself (no namespaces needed): its paths, its re-exports and its layers.

Test files import everything `from lab`, so a public helper added to a part but not to
lab/__init__.py would break them; a part importing one below it would make a cycle.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import lab

# each part imports only the parts before it
PARTS = [
    "host",
    "markers",
    "procs",
    "namespaces",
    "topology",
    "servers",
    "containers",
    "lan",
    "dualstack",
    "pinhole6",
]
LAB_DIR = Path(lab.__file__).parent


def _tree(part: str) -> ast.Module:
    return ast.parse((LAB_DIR / f"{part}.py").read_text())


def _defined(part: str) -> set[str]:
    """Public names a part defines at its top level (def, class, assignment)."""
    names: set[str] = set()
    for node in _tree(part).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_paths_point_at_the_repository() -> None:
    assert (lab.REPO / "pyproject.toml").is_file()
    assert lab.SRC == lab.REPO / "src"
    assert (lab.SRC / "reverseprobe" / "__init__.py").is_file()


def test_every_public_name_of_every_part_is_exported() -> None:
    exported = set(lab.__all__)
    for part in PARTS:
        module = importlib.import_module(f"lab.{part}")
        for name in _defined(part):
            assert name in exported, f"lab.{part}.{name} is not re-exported by lab/__init__.py"
            assert getattr(lab, name) is getattr(module, name)
    assert sorted(p.stem for p in LAB_DIR.glob("*.py") if p.stem != "__init__") == sorted(PARTS)


def test_parts_import_only_the_parts_above() -> None:
    for i, part in enumerate(PARTS):
        for node in ast.walk(_tree(part)):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                assert node.module in PARTS[:i], f"lab.{part} imports lab.{node.module}"
