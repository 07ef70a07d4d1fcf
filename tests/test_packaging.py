"""Packaging: a built wheel works outside the source tree (presets are package data, a study finds its recipe
beside it), the command line says its version, a model-only install (torch, transformers, safetensors and what
they require, nothing else) runs ``--version``, ``--help`` and ``convert`` and says which extras the other
commands need, and the lowest transformers the package declares imports it and runs a forward."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bert_ode import __version__
from bert_ode.cli import main

REPO = Path(__file__).resolve().parents[1]

WHEEL_SCRIPT = textwrap.dedent(
    """
    import shutil, sys
    from pathlib import Path
    # Only the wheel: drop the editable install's finder, which would map bert_ode to the source tree.
    sys.meta_path = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
    sys.path.insert(0, sys.argv[1])
    import bert_ode
    assert Path(bert_ode.__file__).is_relative_to(sys.argv[1]), bert_ode.__file__
    from bert_ode.pretrain.config import load_config
    from bert_ode.study.config import load_study

    assert load_config("smoke").model["hidden_size"] == 64
    assert load_study("smoke").pretrain == "smoke"
    # A study copied elsewhere with its own recipe beside it (pretrain: recipe.yaml, relative to the study).
    folder = Path(sys.argv[2])
    folder.mkdir()
    shutil.copy(Path(bert_ode.__file__).parent / "configs" / "smoke.yaml", folder / "recipe.yaml")
    study = (Path(bert_ode.__file__).parent / "configs" / "compare-smoke.yaml").read_text()
    (folder / "study.yaml").write_text(study.replace("pretrain: smoke", "pretrain: recipe.yaml"))
    loaded = load_study(str(folder / "study.yaml"))
    assert Path(loaded.pretrain) == folder / "recipe.yaml", loaded.pretrain
    print("OK", bert_ode.__file__)
    """
)


PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The package built as a wheel, once for this module."""
    wheels = tmp_path_factory.mktemp("wheels")
    built = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = wheels.glob("bert_ode-*.whl")
    return path


def test_a_wheel_works_outside_the_source_tree(tmp_path, wheel):
    site = tmp_path / "site"
    pip = PIP
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--quiet", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert sorted(p.name for p in (site / "bert_ode" / "configs").glob("*.yaml")) == sorted(
        p.name for p in (REPO / "src" / "bert_ode" / "configs").glob("*.yaml")
    )
    result = subprocess.run(
        [sys.executable, "-c", WHEEL_SCRIPT, str(site), str(tmp_path / "elsewhere")],
        cwd=tmp_path,  # not the repository
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "OK" in result.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"bert-ode {__version__}"


def test_a_model_only_install_says_which_extras_the_command_line_needs():
    script = (
        "import sys; sys.modules['datasets'] = None  # as if only torch + transformers were installed\n"
        "from bert_ode.cli import main; sys.exit(main(['pretrain']))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "pip install 'bert-ode[train,data]'" in result.stderr
    assert "Traceback" not in result.stderr


def _installed_closure(names: list[str]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` require, transitively, without extras: what ``pip install``
    of them alone would bring (at the versions installed here)."""
    found: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        found[name] = metadata.distribution(name)
        for text in found[name].requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


def _venv_with(path: Path, distributions: list[str], with_pip: bool = False) -> Path:
    """A fresh venv holding only ``distributions`` and what they require, linked from this environment
    (offline, and seconds instead of a download); returns its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(path)], check=True
    )
    python = path / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for distribution in _installed_closure(distributions):
        for top in {Path(f).parts[0] for f in distribution.files or []} - {"..", "__pycache__"}:
            if not (site / top).exists():
                (site / top).symlink_to(Path(distribution.locate_file(top)))
    return python


def _install_wheel(python: Path, wheel: Path) -> None:
    installed = subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]


def _run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=600
    )


def test_a_model_only_install_runs_version_help_and_convert(tmp_path, wheel):
    from transformers import BertConfig, BertForMaskedLM

    python = _venv_with(tmp_path / "venv", ["torch", "transformers", "safetensors"])
    _install_wheel(python, wheel)
    command = python.parent / "bert-ode"
    version = _run([command, "--version"], tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"bert-ode {__version__}", version.stderr
    probe = "import sys, bert_ode_cli\ntry: bert_ode_cli.main(['--help'])\nexcept SystemExit: pass\n"
    loaded = _run(
        [python, "-c", probe + "print(sorted({'torch', 'transformers'} & set(sys.modules)))"], tmp_path
    )
    assert loaded.stdout.strip().endswith("[]"), loaded.stdout + loaded.stderr  # nothing heavy for --help
    assert "convert" in loaded.stdout and "pretrain" in loaded.stdout
    assert _run([python, "-c", "import accelerate"], tmp_path).returncode != 0  # really model-only

    source = tmp_path / "bert"
    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    BertForMaskedLM(config).save_pretrained(source)
    converted = _run([command, "convert", source, tmp_path / "ode", "--set", "ode_method=heun"], tmp_path)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert json.loads((tmp_path / "ode" / "config.json").read_text())["ode_method"] == "heun"

    needs_extras = _run([command, "pretrain"], tmp_path)
    assert needs_extras.returncode == 2 and "Traceback" not in needs_extras.stderr
    assert "pip install 'bert-ode[train,data]'" in needs_extras.stderr


def _declared_lowest(package: str) -> str:
    """The lower bound pyproject.toml declares for ``package`` (read as text: tomllib is Python 3.11+)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    (lowest,) = re.findall(rf'^\s*"{package}>=([0-9.]+)', text, flags=re.MULTILINE)
    return lowest


LOWEST_CHECK = textwrap.dedent(
    """
    import tempfile, torch, transformers
    from packaging.version import Version
    from bert_ode import BertOdeConfig, BertOdeForMaskedLM
    assert Version(transformers.__version__) == Version("{version}"), transformers.__version__
    for method in ("euler", "heun", "ab2-learned", "pcformer-rk2"):
        config = BertOdeConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=32, ode_method=method)
        model = BertOdeForMaskedLM(config).eval()
        ids = torch.randint(0, 50, (2, 7))
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            again = transformers.AutoModelForMaskedLM.from_pretrained(folder).eval()
        assert torch.allclose(model(ids).logits, again(ids).logits), method
    print("OK")
    """
)


def test_the_lowest_declared_transformers_imports_and_runs_the_model(tmp_path, wheel):
    lowest = _declared_lowest("transformers")
    python = _venv_with(tmp_path / "venv", ["torch", "safetensors"], with_pip=True)
    fetched = _run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", f"transformers=={lowest}"],
        tmp_path,
    )
    if fetched.returncode != 0 and (
        "NewConnectionError" in fetched.stderr or "No matching" in fetched.stderr
    ):
        pytest.skip(
            f"transformers=={lowest} cannot be fetched here: {fetched.stderr.strip().splitlines()[-1]}"
        )
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    _install_wheel(python, wheel)
    result = _run([python, "-c", LOWEST_CHECK.format(version=lowest)], tmp_path)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]
