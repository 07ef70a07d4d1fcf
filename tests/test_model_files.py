"""The model files import only what a model needs: a checkpoint's remote code is model code only, loading it
imports nothing else, and the config loads where torch is not installed (issue 21, item 5)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import transformers
from conftest import TINY, tiny_ode_config

import bert_ode

PACKAGE = Path(bert_ode.__file__).parent
# What a checkpoint carries for trust_remote_code=True: the config and model files and what they import.
MODEL_FILES = {
    "configuration_bert_ode.py",
    "modeling_bert_ode.py",
    "solvers.py",
    "integrators.py",
    "tableaux.py",
    "methods.py",
}
# The config's own closure: what AutoConfig loads from a checkpoint.
CONFIG_FILES = {"configuration_bert_ode.py", "methods.py", "tableaux.py"}


def _relative_imports(file: Path) -> set[str]:
    """The package modules ``file`` imports relatively, anywhere in it."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return {f"{node.module}.py" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}


def _absolute_imports(file: Path) -> set[str]:
    tree = ast.parse(file.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_relative_imports(PACKAGE / name))
    return seen


def test_model_code_imports_only_model_files():
    assert _closure("modeling_bert_ode.py") == MODEL_FILES
    assert _closure("configuration_bert_ode.py") == CONFIG_FILES


def test_config_files_import_no_torch():
    for name in CONFIG_FILES:
        assert "torch" not in _absolute_imports(PACKAGE / name), name


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A BertOde checkpoint with remote code (a multistep method, so its history code travels too) and a
    plain BERT one."""
    root = tmp_path_factory.mktemp("checkpoints")
    bert_ode.BertOdeForMaskedLM(tiny_ode_config(ode_method="ab2-learned")).save_pretrained(root / "ode")
    transformers.BertForMaskedLM(transformers.BertConfig(**TINY)).save_pretrained(root / "bert")
    return root


def test_remote_code_checkpoint_holds_only_model_files(checkpoints):
    saved = {path.name for path in (checkpoints / "ode").glob("*.py")}
    assert saved == MODEL_FILES
    assert not {"convert.py", "model_card.py"} & saved


def _run(script: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "PYTHONPATH": "",
    }
    file = tmp_path / "script.py"
    file.write_text(textwrap.dedent(script))
    return subprocess.run(
        [sys.executable, str(file), *args],
        cwd=tmp_path,  # not the repository: src/ must not be importable from the working directory
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


LOAD_SCRIPT = """
    import json, sys
    sys.modules["bert_ode"] = None  # transformers is installed, bert_ode is not
    import transformers
    from transformers import AutoModelForMaskedLM

    transformers.logging.set_verbosity_error()
    # What transformers itself imports to load a model: a plain BERT first.
    AutoModelForMaskedLM.from_pretrained(sys.argv[2])
    before = set(sys.modules)
    model = AutoModelForMaskedLM.from_pretrained(sys.argv[1], trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_loading_remote_code_imports_only_the_model_files(checkpoints, tmp_path):
    result = _run(LOAD_SCRIPT, str(checkpoints / "ode"), str(checkpoints / "bert"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    added = json.loads(result.stdout.strip().splitlines()[-1])
    # Beyond what loading BERT imports, only the checkpoint's own modules: no huggingface_hub card code, no
    # tokenizers, no training packages.
    assert "huggingface_hub.repocard" not in added
    assert all(name.startswith("transformers_modules") for name in added), added
    loaded = {name.rsplit(".", 1)[-1] + ".py" for name in added if name.count(".") >= 3}
    assert loaded == MODEL_FILES, loaded


CONFIG_SCRIPT = """
    import sys
    sys.modules["bert_ode"] = None
    sys.modules["torch"] = None  # torch is not installed
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(sys.argv[1], trust_remote_code=True)
    assert type(config).__name__ == "BertOdeConfig", type(config)
    config.ode_steps = 3  # assignments are still checked
    try:
        config.ode_method = "ab4"
    except ValueError as error:
        assert "'ab2'" in str(error), error
    else:
        raise SystemExit("ab4 was accepted")
    config.validate_solver()
    config.save_pretrained(sys.argv[1] + "-config")
    print("OK", config.ode_method)
"""


def test_config_loads_where_torch_is_not_installed(checkpoints, tmp_path):
    result = _run(CONFIG_SCRIPT, str(checkpoints / "ode"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK ab2-learned" in result.stdout


def test_from_bert_names_the_package_where_conversion_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "bert_ode.convert", None)
    with pytest.raises(ImportError, match="bert_ode.convert"):
        bert_ode.BertOdeModel.from_bert("unused")


TOKENIZER_SCRIPT = """
    import sys
    sys.modules["bert_ode"] = None  # transformers is installed, bert_ode is not
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])  # no trust_remote_code; stdin is closed
    print()
    print(type(tokenizer).__name__, tokenizer("hello world")["input_ids"])
"""


def test_a_checkpoints_tokenizer_is_transformers_own_bert_tokenizer(checkpoints, tmp_path):
    """The tokenizer is plain WordPiece: saved with ``tokenizer_class`` and no ``auto_map`` of its own, it
    loads as transformers' BertTokenizer where bert_ode is not installed. (transformers reads the model's
    config first and, finding its remote code, asks about it on a terminal; with stdin closed it goes on
    without: the tokenizer needs none of it.)"""
    from transformers import BertTokenizerFast

    folder = tmp_path / "with-tokenizer"
    shutil.copytree(checkpoints / "ode", folder)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    saved = json.loads((folder / "tokenizer_config.json").read_text())
    assert saved["tokenizer_class"].startswith("BertTokenizer") and "auto_map" not in saved
    result = _run(TOKENIZER_SCRIPT, str(folder), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]  # after the question transformers asks about the config
    expected = transformers.AutoTokenizer.from_pretrained(folder)("hello world")["input_ids"]
    assert last.startswith("BertTokenizer") and last.endswith(str(expected)), result.stdout
