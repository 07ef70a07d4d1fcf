"""Every run computes in the precision its own config resolves to, in any order in one process (accelerate's
per-process state must not carry a fine-tuning's bf16 into the next pretraining); ``auto`` is bf16 only where
the hardware multiplies bf16 natively, decided from torch's own view of the CPU; a study pins its
precision."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import tiny_pretraining, write_austen
from torch import nn

from bert_ode.finetune import FinetuneConfig, evaluate, finetune
from bert_ode.pretrain import pretrain
from bert_ode.study import Study, load_study
from bert_ode.study.records import StudyPin
from bert_ode.utils.device import ComputeInfo, cpu_supports_bf16, resolve_precision


class LinearOutputDtypes:
    """Records the dtype of every ``nn.Linear`` output computed while it is active, and whether CPU autocast
    was on: what a run really computed in, seen from inside the model's forward."""

    def __init__(self):
        self.seen: set[tuple[torch.dtype, bool]] = set()

    def __enter__(self):
        def hook(module, inputs, output):
            if isinstance(module, nn.Linear) and torch.is_tensor(output):
                self.seen.add((output.dtype, torch.is_autocast_enabled("cpu")))

        self.handle = nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


QUICK_FINETUNE = dict(
    seeds=[0],
    epochs=1,
    max_train_examples=16,
    max_eval_examples=16,
    max_seq_length=32,
    batch_size=8,
    progress=False,
    output_dir=None,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    corpus = write_austen(folder / "austen.txt")
    return pretrain(None, tiny_pretraining(corpus, folder / "source")).final_dir, corpus


def test_a_bf16_fine_tuning_does_not_make_the_next_pretraining_bf16(checkpoint, tmp_path):
    source, corpus = checkpoint
    tuned = finetune(FinetuneConfig(checkpoint=str(source), precision="bf16", **QUICK_FINETUNE))
    assert tuned.compute.precision == "bf16"
    with LinearOutputDtypes() as probe:
        result = pretrain(None, tiny_pretraining(corpus, tmp_path / "after", **{"train.precision": "fp32"}))
    assert probe.seen == {(torch.float32, False)}
    assert result.compute.precision == "fp32"
    assert json.loads((tmp_path / "after" / "compute.json").read_text())["precision"] == "fp32"


def test_a_bf16_pretraining_does_not_make_the_next_fine_tuning_or_evaluation_bf16(checkpoint, tmp_path):
    _, corpus = checkpoint
    bf16 = pretrain(None, tiny_pretraining(corpus, tmp_path / "bf16", **{"train.precision": "bf16"}))
    assert bf16.compute.precision == "bf16"
    with LinearOutputDtypes() as probe:
        options = {**QUICK_FINETUNE, "output_dir": str(tmp_path / "tuned"), "save_models": True}
        tuned = finetune(FinetuneConfig(checkpoint=str(bf16.final_dir), precision="fp32", **options))
        seed_0 = str(tmp_path / "tuned" / "seed-0")
        scored = evaluate(seed_0, max_eval_examples=8, progress=False, precision="fp32")
    assert probe.seen == {(torch.float32, False)}
    assert tuned.compute.precision == scored.compute.precision == "fp32"


def test_bf16_is_an_alias_of_precision_bf16():
    config = FinetuneConfig(checkpoint="unused", bf16=True)
    assert (config.precision, config.bf16) == ("bf16", False)
    with pytest.raises(ValueError, match="bf16=True contradicts precision='fp32'"):
        FinetuneConfig(checkpoint="unused", bf16=True, precision="fp32")
    with pytest.raises(
        ValueError, match="precision='fp16' is invalid; allowed values: 'auto', 'bf16', 'fp32'"
    ):
        FinetuneConfig(checkpoint="unused", precision="fp16")


_AS_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}

_PROBE = textwrap.dedent(
    """
    import json, time, torch
    from bert_ode.utils.device import cpu_capability, cpu_supports_bf16, resolve_precision
    torch.set_num_threads(1)

    def gflops(dtype, n=384):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        a @ b
        best = min(_time(a, b) for _ in range(3))
        return 2 * n**3 / best / 1e9

    def _time(a, b):
        start = time.perf_counter()
        a @ b
        return time.perf_counter() - start

    cpu = torch.device("cpu")
    first, second = resolve_precision("bf16", cpu), resolve_precision("bf16", cpu)
    print(json.dumps({
        "capability": cpu_capability(), "native": cpu_supports_bf16(),
        "auto": str(resolve_precision("auto", cpu)), "bf16": str(first),
        "fp32_gflops": gflops(torch.float32), "bf16_gflops": gflops(torch.bfloat16),
    }))
    """
)


def _probe(env: dict) -> tuple[dict, str]:
    import os

    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout), done.stderr


def test_a_cpu_told_to_act_as_avx2_resolves_auto_to_fp32_and_really_emulates_bf16():
    probe, stderr = _probe(_AS_AVX2)
    assert probe["capability"] == "AVX2" and probe["native"] is False
    assert probe["auto"] == "None"  # float32
    assert probe["bf16"] == "torch.bfloat16"  # asked for explicitly: it runs...
    warnings = [line for line in stderr.splitlines() if "emulated" in line]
    assert len(warnings) == 1 and "precision auto chooses fp32 here" in warnings[0]  # ...and says so once
    # The premise, measured: with these two variables bf16 matrix products are emulated, far slower than fp32.
    assert probe["bf16_gflops"] < probe["fp32_gflops"] / 3, probe


def test_auto_follows_the_hardware_here():
    cpu = torch.device("cpu")
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        flags = handle.read()
    native = (
        "avx512_bf16" in flags or "amx_bf16" in flags
    ) and torch.backends.cpu.get_cpu_capability() == "AVX512"
    assert cpu_supports_bf16() == native
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if native else None)
    assert resolve_precision("fp32", cpu) is None
    info = ComputeInfo.of(None, cpu)
    assert (info.precision, info.device, info.threads) == ("fp32", "cpu", torch.get_num_threads())


def _tiny_study(tmp_path, overrides: dict):
    study = {
        "name": "pinned",
        "pretrain": "smoke",
        "variants": [{"name": "bert"}],
        "runs_dir": str(tmp_path / "runs"),
        "report_dir": str(tmp_path / "reports"),
    }
    path = tmp_path / "study.json"
    path.write_text(json.dumps(study))
    return load_study(str(path), overrides)


def test_a_study_pins_its_precision_when_it_starts_and_refuses_a_part_that_would_mix(tmp_path):
    study = Study(_tiny_study(tmp_path, {"precision": "fp32"}), progress=False)
    assert study.pin_precision() == "fp32"
    pin = StudyPin.read_json(tmp_path / "runs" / "pinned" / "records" / "study.json")
    assert pin.precision == "fp32" and pin.decided_on.cpu_capability
    assert study.recipes.pretrain.train.precision == "fp32" and study.recipes.finetune.precision == "fp32"
    # The same study resumed where it would compute in bf16: refused, saying what differs and how to go on.
    resumed = Study(_tiny_study(tmp_path, {"precision": "bf16"}), progress=False)
    with pytest.raises(ValueError) as refusal:
        resumed.pin_precision()
    message = str(refusal.value)
    assert "computes in fp32, pinned when it started" in message and "precision=bf16 means bf16" in message
    assert "--set precision=fp32" in message and "--set name=" in message
