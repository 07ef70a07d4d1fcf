"""Packaging: a built wheel works outside the source tree (presets are package data, a study finds its recipe
beside it), the command line says its version, and a model-only install says which extras the CLI needs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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

    assert load_config("smoke").model["hidden_size"] == 128
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


def test_a_wheel_works_outside_the_source_tree(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("bert_ode-*.whl")
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
