"""The tree is the architecture (docs/architecture.md): imports point one way, and each package's
``__init__`` offers only names its own modules define."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bert_ode"
MODEL = {"tableaux", "methods", "integrators", "solvers", "configuration_bert_ode", "modeling_bert_ode"}
WINGS = {"pretrain", "finetune", "study"}

# part of the package -> the parts it must never import
FORBIDDEN = {
    **{name: {"convert", "model_card", "data", "utils", "cli", "training", *WINGS} for name in MODEL},
    "data": {"utils", "cli", "training", *WINGS},
    "utils": {"cli", "training", *WINGS},
    "pretrain": {"finetune", "study", "cli", "training"},
    "finetune": {"pretrain", "study", "cli", "training"},
    "study": {"cli", "training"},
}


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_parts(path: Path) -> set[str]:
    """The top-level parts of bert_ode that ``path`` imports (relative or absolute), anywhere in the file."""
    package = list(path.relative_to(PACKAGE).parent.parts)
    parts = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [target[0]] if target else [alias.name for alias in node.names]
            parts.update(names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            parts.update(m.split(".")[1] for m in modules if m and m.startswith("bert_ode.") and "." in m)
    return parts


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_imports_point_one_way(part):
    files = [PACKAGE / f"{part}.py"] if part in MODEL else sorted((PACKAGE / part).rglob("*.py"))
    wrong = {
        str(path.relative_to(PACKAGE)): sorted(_imported_parts(path) & FORBIDDEN[part])
        for path in files
        if _imported_parts(path) & FORBIDDEN[part]
    }
    assert not wrong, f"imports against the architecture's direction: {wrong}"


@pytest.mark.parametrize("package", ["data", "utils", "pretrain", "finetune", "study"])
def test_a_packages_public_names_come_from_its_own_modules(package):
    init = PACKAGE / package / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1 and node.module, f"{init}: imports {node.module} from outside the package"
            assert (PACKAGE / package / f"{node.module.split('.')[0]}.py").is_file() or (
                PACKAGE / package / node.module.split(".")[0]
            ).is_dir()


def test_the_old_training_paths_still_work_and_say_where_things_moved():
    import importlib
    import sys

    import bert_ode.pretrain

    with pytest.warns(DeprecationWarning, match="import it from bert_ode.pretrain"):
        from bert_ode.training import pretrain
    assert pretrain is bert_ode.pretrain.pretrain
    sys.modules.pop("bert_ode.training.finetune", None)
    with pytest.warns(DeprecationWarning, match="import from bert_ode.finetune"):
        old = importlib.import_module("bert_ode.training.finetune")
    assert old.finetune is importlib.import_module("bert_ode.finetune").finetune
