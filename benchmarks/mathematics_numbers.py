"""Every number docs/mathematics.md derives by computation rather than by hand (issue 25). A script; nothing
imports it. Float64 throughout; a few seconds on two CPU cores.

    python benchmarks/mathematics_numbers.py

Sections, in the chapter's order:

1. Stability polynomials at h = 1: how far each scheme is from e^lambda at lambda = -0.5; the gated RK2's
   imaginary-axis interval; gamma = 7/8 as the shifted Chebyshev polynomial T2(1 + z/4), interval 8 = 2 s^2.
2. A non-normal Jacobian: eigenvalues at the centre of Euler's stability disc, one step still amplifies 10x.
3. Pre-norm fields: D(F o LN)(c y) = D(F o LN)(y) / c, against the growth of raw attention's Jacobian.
4. Post-norm layer scope: how much refining the steps removes from the one-step update, for a frozen G (the
   relaxation reading), on a toy layer (d = 64, softmax attention, GELU feed-forward) with matched or
   mismatched LayerNorm gains and weak or strong fields, and on BertOdeModel itself.
5. The scalar adjoint example: gradient of the flow, of the computed Euler map, and torchdiffeq's continuous
   adjoint, for 1 to 256 steps.
6. Binomial checkpointing: how many steps c checkpoints and r recomputations reverse.
7. The trained models (committed figures in reports/cpu-v1/, nothing measured again): observed orders of the
   Euler models, the two-term error model behind the gated RK2 ratios, Heun seed 1's shortfall from 4 and a
   linear mode's ratio from above or below, and the Richardson distance of each trained map from its limit.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import torch

REPORTS = Path(__file__).resolve().parents[1] / "reports" / "cpu-v1"
torch.set_default_dtype(torch.float64)


# 1. Stability polynomials


def truncated_exp(z: float, p: int) -> float:
    return sum(z**k / math.factorial(k) for k in range(p + 1))


def gated_imaginary_bound(gamma: float) -> float:
    """|R(iy)| <= 1 for |y| up to this, R(z) = 1 + z + (1 - gamma) z^2 (0 when gamma >= 1/2)."""
    return math.sqrt(1 - 2 * gamma) / (1 - gamma) if gamma < 0.5 else 0.0


def gated_real_interval(gamma: float) -> float:
    if 8 * (1 - gamma) >= 1:
        return 1 / (1 - gamma)
    return (1 - math.sqrt(1 - 8 * (1 - gamma))) / (2 * (1 - gamma))


def section_stability() -> None:
    print("## 1. Stability polynomials at h = 1\n")
    flow = math.exp(-0.5)
    for name, p in (("Euler", 1), ("2-stage order 2", 2), ("T3", 3), ("T4", 4)):
        value = truncated_exp(-0.5, p)
        print(
            f"lambda = -0.5: {name:16s} R = {value:.4f}, e^lambda = {flow:.4f}, "
            f"off by {abs(value / flow - 1):.2%}"
        )
    print()
    for gamma in (0.0, 0.1, 0.25, 0.4, 0.5, 0.75):
        bound = gated_imaginary_bound(gamma)
        probes = (0.999 * bound, 1.001 * bound) if bound else (0.0, 0.1)
        values = [abs(complex(1 - (1 - gamma) * y * y, y)) for y in probes]
        print(
            f"gated RK2, gamma = {gamma:4}: imaginary-axis interval |y| <= {bound:.4f}"
            f"   (|R(iy)| at y = {probes[0]:.4f}: {values[0]:.6f}, at y = {probes[1]:.4f}: {values[1]:.6f})"
        )
    chebyshev = [2 * c for c in (1, 1 / 2, 1 / 16)]  # 2 (1 + z/4)^2 = 2 + z + z^2/8
    chebyshev[0] -= 1
    print(f"\ngamma = 7/8: R = 1 + z + z^2/8; T2(1 + z/4) = 2 (1 + z/4)^2 - 1 has coefficients {chebyshev}")
    best = max((gated_real_interval(g / 1000), g / 1000) for g in range(1, 1000))
    print(
        f"real interval at gamma = 7/8: {gated_real_interval(7 / 8):.6f} = 2 s^2 with s = 2; "
        f"largest over gamma in (0, 1): {best[0]:.6f} at gamma = {best[1]}\n"
    )


# 2. Non-normal Jacobians


def section_non_normal() -> None:
    print("## 2. A non-normal Jacobian\n")
    jacobian = torch.tensor([[-1.0, 10.0], [0.0, -1.0]])
    powers = [torch.linalg.matrix_power(jacobian, k) for k in range(5)]
    euler = powers[0] + powers[1]
    rk4 = sum(power / math.factorial(k) for k, power in enumerate(powers))
    for name, r in (("Euler", euler), ("RK4", rk4)):
        radius = torch.linalg.eigvals(r).abs().max().item()
        print(
            f"J = [[-1, 10], [0, -1]], h = 1, {name}: spectral radius of R(J) {radius:.3f}, "
            f"norm {torch.linalg.matrix_norm(r, 2).item():.3f}"
        )
    print()


# 3-4. Toy layers

TOKENS, WIDTH, HEADS = 8, 64, 4


def toy_layer(seed: int, field_scale: float, gain_spread: float) -> tuple[dict, torch.Tensor]:
    """Weights N(0, 1/fan_in), output projections scaled by field_scale; gains 1 + U(-spread, spread)."""
    generator = torch.Generator().manual_seed(seed)

    def weight(fan_in: int, fan_out: int, scale: float = 1.0) -> torch.Tensor:
        return scale * torch.randn(fan_in, fan_out, generator=generator) / math.sqrt(fan_in)

    def gain() -> torch.Tensor:
        return 1 + gain_spread * (2 * torch.rand(WIDTH, generator=generator) - 1)

    layer = dict(
        query=weight(WIDTH, WIDTH),
        key=weight(WIDTH, WIDTH),
        value=weight(WIDTH, WIDTH),
        out=weight(WIDTH, WIDTH, field_scale),
        up=weight(WIDTH, 4 * WIDTH),
        down=weight(4 * WIDTH, WIDTH, field_scale),
        gain_before=gain(),
        gain_attention=gain(),
        gain_ffn=gain(),
    )
    return layer, torch.randn(TOKENS, WIDTH, generator=generator)


def layer_norm(x: torch.Tensor, gain: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    centred = x - x.mean(-1, keepdim=True)
    return gain * centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps)


def attention(layer: dict, x: torch.Tensor) -> torch.Tensor:
    def heads(w: torch.Tensor) -> torch.Tensor:  # (heads, tokens, width / heads)
        return (x @ w).view(TOKENS, HEADS, -1).transpose(0, 1)

    q, k, v = heads(layer["query"]), heads(layer["key"]), heads(layer["value"])
    probs = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(WIDTH // HEADS), dim=-1)
    return (probs @ v).transpose(0, 1).reshape(TOKENS, WIDTH) @ layer["out"]


def feed_forward(layer: dict, x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x @ layer["up"]) @ layer["down"]


def post_norm_g(layer: dict, y: torch.Tensor) -> torch.Tensor:
    """G(y) = u + F_ffn(u), u = LN_att(y + F_att(y)); the layer-scope post-norm field is G(y) - y."""
    u = layer_norm(y + attention(layer, y), layer["gain_attention"])
    return u + feed_forward(layer, u)


def euler_solve(layer: dict, y: torch.Tensor, steps: int) -> torch.Tensor:
    for _ in range(steps):
        y = y + (post_norm_g(layer, y) - y) / steps
    return y


def flow_solve(layer: dict, y: torch.Tensor, steps: int = 256) -> torch.Tensor:
    """The exact flow to about 1e-10: classic RK4 with 256 steps."""

    def field(z: torch.Tensor) -> torch.Tensor:
        return post_norm_g(layer, z) - z

    h = 1 / steps
    for _ in range(steps):
        k1 = field(y)
        k2 = field(y + h / 2 * k1)
        k3 = field(y + h / 2 * k2)
        k4 = field(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def linearised_limit(layer: dict, y: torch.Tensor) -> torch.Tensor:
    """Linearised flow: y + g(M) Delta, g(x) = (e^x - 1)/x, M = DG(y) - I, Delta = G(y) - y."""
    size = y.numel()
    jacobian = torch.autograd.functional.jacobian(
        lambda z: post_norm_g(layer, z.view_as(y)).reshape(-1), y.reshape(-1), vectorize=True
    )
    augmented = torch.zeros(size + 1, size + 1)
    augmented[:size, :size] = jacobian - torch.eye(size)
    augmented[:size, size] = (post_norm_g(layer, y) - y).reshape(-1)
    return y + torch.linalg.matrix_exp(augmented)[:size, size].view_as(y)


POST_NORM_CASES = {
    "matched unit gains, weak fields": (0.1, 0.0),
    "mismatched gains, weak fields": (0.1, 0.5),
    "matched unit gains, strong fields": (1.0, 0.0),
    "mismatched gains, strong fields": (1.0, 0.5),
}


def post_norm_refinement(field_scale: float, gain_spread: float, seed: int) -> dict:
    """Fractions of the one-step update ||Psi_1(y) - y|| that refinement moves, before and after LN_ffn."""
    layer, x = toy_layer(seed, field_scale, gain_spread)
    y = layer_norm(x, layer["gain_before"])  # the block input: the previous LayerNorm's output
    one = euler_solve(layer, y, 1)
    update = (one - y).norm()
    limit = flow_solve(layer, y)
    out_one = layer_norm(one, layer["gain_ffn"])
    return {
        "update / state": (update / y.norm()).item(),
        "n=2": ((euler_solve(layer, y, 2) - one).norm() / update).item(),
        "n=4": ((euler_solve(layer, y, 4) - one).norm() / update).item(),
        "limit": ((limit - one).norm() / update).item(),
        "linearised limit": ((linearised_limit(layer, y) - one).norm() / update).item(),
        "after LN_ffn": (
            (layer_norm(limit, layer["gain_ffn"]) - out_one).norm() / (out_one - y).norm()
        ).item(),
    }


def model_refinement(initializer_range: float) -> tuple[float, dict[int, float]]:
    """BertOdeModel, one post-norm layer-scope layer at its initialisation (unit gains): how far refining
    moves the output, as a fraction of the one-step update of its input (the embeddings' LayerNorm)."""
    from bert_ode import BertOdeConfig, BertOdeModel

    torch.manual_seed(0)
    config = BertOdeConfig(
        vocab_size=100,
        hidden_size=WIDTH,
        num_hidden_layers=1,
        num_attention_heads=HEADS,
        intermediate_size=4 * WIDTH,
        max_position_embeddings=32,
        ode_scope="layer",
        norm_position="post",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=initializer_range,
    )
    model = BertOdeModel(config).double().eval()
    ids = torch.randint(5, 100, (4, 16))
    outputs = {}
    with torch.no_grad():
        for steps in (1, 2, 4, 64):
            model.config.ode_steps = steps
            result = model(input_ids=ids, output_hidden_states=True)
            outputs[steps] = result.last_hidden_state
        block_input = result.hidden_states[0]
    update = (outputs[1] - block_input).norm()
    moved = {n: ((outputs[n] - outputs[1]).norm() / update).item() for n in (2, 4, 64)}
    return (update / block_input.norm()).item(), moved


def section_prenorm_lipschitz() -> None:
    print("## 3. Pre-norm fields: the Jacobian against the size of the residual stream\n")
    layer, x = toy_layer(0, 1.0, 0.0)
    y = layer_norm(x, torch.ones(WIDTH))
    unit = torch.ones(WIDTH)
    print("| c | ||D F_att(c y)|| | c ||D (F_att o LN)(c y)|| |")
    print("|---|---|---|")
    for c in (0.5, 1.0, 2.0, 4.0, 8.0):
        point = (c * y).reshape(-1)
        raw = torch.autograd.functional.jacobian(lambda z: attention(layer, z.view_as(y)).reshape(-1), point)
        pre = torch.autograd.functional.jacobian(
            lambda z: attention(layer, layer_norm(z.view_as(y), unit, eps=0.0)).reshape(-1), point
        )
        print(
            f"| {c} | {torch.linalg.matrix_norm(raw, 2).item():.3f} | "
            f"{c * torch.linalg.matrix_norm(pre, 2).item():.6f} |"
        )
    print()


def section_post_norm() -> None:
    print("## 4. Post-norm layer scope: what refinement removes from the one-step update\n")
    print(
        "frozen G (DG = 0): (1 - 1/n)^n = "
        + ", ".join(f"{(1 - 1 / n) ** n:.4f} (n={n})" for n in (2, 4))
        + f", limit 1/e = {math.exp(-1):.4f}\n"
    )
    keys = ["update / state", "n=2", "n=4", "limit", "linearised limit", "after LN_ffn"]
    print(
        "toy layer, d = 64, 8 tokens, 4 seeds each; fractions of ||Psi_1(y) - y|| (after LN_ffn: of the block"
    )
    print("'s one-step output change), min - max over seeds\n")
    print("| case | " + " | ".join(keys) + " | max |linearised / limit - 1| |")
    print("|---" * (len(keys) + 2) + "|")
    for name, (field_scale, gain_spread) in POST_NORM_CASES.items():
        rows = [post_norm_refinement(field_scale, gain_spread, seed) for seed in range(4)]
        cells = [f"{min(r[k] for r in rows):.3f} - {max(r[k] for r in rows):.3f}" for k in keys]
        miss = max(abs(r["linearised limit"] / r["limit"] - 1) for r in rows)
        print(f"| {name} | " + " | ".join(cells) + f" | {miss:.3f} |")
    print("\nmatched unit gains, weaker fields (seed 0): the block output moves in proportion to the update")
    for field_scale in (0.1, 0.05, 0.025):
        r = post_norm_refinement(field_scale, 0.0, 0)
        print(
            f"  field scale {field_scale}: update / state {r['update / state']:.4f}, "
            f"removed before LN_ffn {r['limit']:.4f}, moved after LN_ffn {r['after LN_ffn']:.4f}"
        )
    print("\nBertOdeModel, one post-norm layer-scope layer at initialisation (moved / one-step update):")
    for initializer_range in (0.02, 0.1, 0.3):
        relative, moved = model_refinement(initializer_range)
        print(
            f"  initializer_range {initializer_range}: update / state {relative:.3f}; "
            + ", ".join(f"n={n}: {v:.3f}" for n, v in moved.items())
        )
    print()


# 5. The scalar adjoint example

W, Y0 = 1.5, 0.8


def _field(y: float) -> float:
    return math.tanh(W * y)


def _d_state(y: float) -> float:
    return W * (1 - math.tanh(W * y) ** 2)


def _d_weight(y: float) -> float:
    return y * (1 - math.tanh(W * y) ** 2)


def flow_gradient() -> float:
    """d y(1) / dw for y' = tanh(w y): sinh(w y(t)) = sinh(w y0) e^{w t}, differentiated in w."""
    s = math.sinh(W * Y0) * math.exp(W)
    ds = (Y0 * math.cosh(W * Y0) + math.sinh(W * Y0)) * math.exp(W)
    return ds / math.sqrt(1 + s * s) / W - math.asinh(s) / W**2


def euler_states(steps: int) -> list[float]:
    states = [Y0]
    for _ in range(steps):
        states.append(states[-1] + _field(states[-1]) / steps)
    return states


def euler_gradients(steps: int) -> dict[str, float]:
    """dL/dw for L = y_n: backpropagation (vector-Jacobian products at y_k, the start of each step); a
    continuous adjoint stepped back with Euler on the stored states (products at y_{k+1}, the end); and the
    same with the states rebuilt backwards from y_n, as torchdiffeq's odeint_adjoint does."""
    h, states = 1 / steps, euler_states(steps)
    results = {}
    for name in ("backpropagation", "adjoint, stored states", "adjoint, rebuilt states"):
        adjoint, gradient, y = 1.0, 0.0, states[-1]
        for k in range(steps, 0, -1):
            at = {"backpropagation": states[k - 1], "adjoint, stored states": states[k]}.get(name, y)
            gradient += h * adjoint * _d_weight(at)
            adjoint *= 1 + h * _d_state(at)
            y -= h * _field(y)
        results[name] = gradient
    return results


def section_adjoint() -> None:
    print("## 5. The scalar adjoint example: F(y) = tanh(w y), w = 1.5, y0 = 0.8, L = y(1)\n")
    print(f"gradient of the flow: {flow_gradient():.6f}\n")
    print("| steps | backpropagation (the computed map) | adjoint, stored states | adjoint, rebuilt states |")
    print("|---|---|---|---|")
    for steps in (1, 2, 4, 16, 64, 256):
        g = euler_gradients(steps)
        print(
            f"| {steps} | {g['backpropagation']:.4f} | {g['adjoint, stored states']:.4f} | "
            f"{g['adjoint, rebuilt states']:.4f} |"
        )
    print()


# 6. Binomial checkpointing


def section_checkpointing() -> None:
    print("## 6. Binomial checkpointing: c checkpoints, repetition number r reverse C(c + r, c) steps\n")
    for steps, checkpoints in ((64, 4), (64, 2), (1024, 8)):
        repeats = next(r for r in range(1, steps) if math.comb(checkpoints + r, checkpoints) >= steps)
        print(
            f"{steps} steps, {checkpoints} checkpoints: repetition number {repeats} "
            f"(C({checkpoints + repeats}, {checkpoints}) = {math.comb(checkpoints + repeats, checkpoints)}; "
            f"C({checkpoints + repeats - 1}, {checkpoints}) = "
            f"{math.comb(checkpoints + repeats - 1, checkpoints)})"
        )
    print()


# 7. The trained models


def signatures() -> list[dict]:
    runs = []
    for seed in range(3):
        for run in json.loads((REPORTS / f"elasticity_signature-seed-{seed}.json").read_text()):
            parts = Path(run["run"]).parts
            runs.append({**run, "variant": parts[-3], "seed": int(parts[-1].split("-")[1])})
    return runs


def scheme_order(run: dict) -> int:
    return 2 if run["ode_method"] == "heun" else 1  # a trained gate is first order as h -> 0 (section 7)


def richardson_distance(run: dict) -> tuple[float, float]:
    """||y_1 - y*|| / ||y*|| two ways: Richardson from n = 1, 2 (y* = y_2 + (y_2 - y_1) / (2^p - 1)), and the
    triangle-inequality sum of the measured step-doubling changes plus their geometric tail."""
    p = scheme_order(run)
    change = {int(n): d for n, d in run["relative_change"].items()}
    richardson = change[1] * 2**p / (2**p - 1)
    telescoped = sum(change.values()) + change[max(change)] / (2**p - 1)
    return richardson, telescoped


def two_term_ratio(x: float) -> float:
    """d(h) / d(h/2) for an error C1 h + C2 h^2, x = C2 h / C1."""
    return (8 + 12 * x) / (4 + 3 * x)


def heun_ratio_on_linear_mode(lam: float, steps: int) -> float:
    def solve(n: int) -> float:
        z = lam / n
        return (1 + z + z * z / 2) ** n

    return abs(solve(steps) - solve(2 * steps)) / abs(solve(2 * steps) - solve(4 * steps))


def euler_ratio_on_linear_mode(lam: float, steps: int, relative: bool) -> float:
    """d(n)/d(2n) of Euler on y' = lambda y: absolute changes |y_n - y_2n|, or relative to |y_2n| (the
    elasticity benchmark's d)."""

    def change(n: int) -> float:
        coarse, fine = (1 + lam / n) ** n, (1 + lam / (2 * n)) ** (2 * n)
        return abs(coarse - fine) / (abs(fine) if relative else 1.0)

    return change(steps) / change(2 * steps)


def heun_seed_1_long_ratios() -> dict[int, float]:
    """The d(n)/d(2n) row of the 512-step Heun seed-1 table in reports/cpu-v1/elasticity_signature.md."""
    text = (REPORTS / "elasticity_signature.md").read_text()
    table = text[text.index("## Heun, seed 1, up to 512 steps") :]
    header = next(line for line in table.splitlines() if line.startswith("| run"))
    row = next(line for line in table.splitlines() if "heun/tokens-16000000/seed-1" in line)
    names, cells = header.split("|"), row.split("|")
    ratios = {}
    for name, cell in zip(names, cells, strict=True):
        match = re.fullmatch(r" d\((\d+)\)/d\(\d+\) ", name)
        if match:
            ratios[int(match.group(1))] = float(cell)
    return ratios


def loss_rise_one_to_four_steps() -> dict[str, float]:
    """Mean validation MLM loss at 4 steps minus at 1 step, from report.md's depth-elasticity table."""
    text = (REPORTS / "report.md").read_text()
    table = text[text.index("## Depth elasticity: validation MLM loss") :].split("\n\n")[1]
    rises = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        means = [float(cell.split()[0]) for cell in cells[1:]]
        rises[cells[0].strip("`")] = means[-1] - means[0]
    return rises


def section_trained_models() -> None:
    print("## 7. The trained models (reports/cpu-v1/elasticity_signature*, committed figures)\n")
    runs = signatures()
    euler = [r for r in runs if r["ode_method"] == "euler"]
    ratios = [v for r in euler for v in r["ratio"].values()]
    print(
        f"Euler models (bert, bert-2x-layers, bert-2x-tokens, strang): d(n)/d(2n) from {min(ratios):.2f} "
        f"to {max(ratios):.2f}"
    )
    for chosen_steps in (("1",), ("2", "4", "8")):
        orders = [r["observed_order"][n] for r in euler for n in chosen_steps]
        print(
            f"  every Euler model, n = {', '.join(chosen_steps)}: "
            f"observed orders {min(orders):.2f} - {max(orders):.2f}"
        )
    for variant in ("bert", "bert-2x-tokens", "strang", "bert-2x-layers"):
        chosen = [r for r in euler if r["variant"] == variant]
        for n in ("1", "2", "4", "8", "16"):
            orders = [r["observed_order"][n] for r in chosen]
            print(f"  {variant:15s} n = {n:>2}: observed order {min(orders):.2f} - {max(orders):.2f}")
    gated = [r for r in runs if r["ode_method"] == "rk2-gated"]
    for r in gated:
        print(
            f"rk2-gated seed {r['seed']}: ratios "
            + ", ".join(f"{v:.2f}" for v in r["ratio"].values())
            + "; observed orders "
            + ", ".join(f"{v:.2f}" for v in r["observed_order"].values())
        )
    print(
        "two-term model C1 h + C2 h^2, same signs (x = C2 h / C1 >= 0): ratio "
        + ", ".join(f"{two_term_ratio(x):.3f} (x={x})" for x in (1000.0, 10.0, 1.0, 0.1, 0.0))
    )
    heun = [r for r in runs if r["ode_method"] == "heun"]
    for r in heun:
        print(
            f"heun seed {r['seed']}: ratios "
            + ", ".join(f"{v:.2f}" for v in r["ratio"].values())
            + "; observed orders "
            + ", ".join(f"{v:.2f}" for v in r["observed_order"].values())
        )
    long = heun_seed_1_long_ratios()
    shortfall = {n: 4 - v for n, v in long.items() if n >= 16}
    steps = sorted(shortfall)
    print(
        "heun seed 1, up to 512 steps: shortfall 4 - ratio "
        + ", ".join(f"{shortfall[n]:.2f} (n={n})" for n in steps)
        + "; shrinking by "
        + ", ".join(f"{shortfall[a] / shortfall[b]:.2f}" for a, b in zip(steps, steps[1:], strict=False))
    )
    print("Heun on y' = lambda y, ratio d(n)/d(2n) at n = 4, 8, ..., 256:")
    for lam in (-50.0, -10.0, -3.0, 3.0, 10.0):
        print(
            f"  lambda = {lam:6}: "
            + ", ".join(f"{heun_ratio_on_linear_mode(lam, 2**k):.2f}" for k in range(2, 9))
        )
    print("Euler on y' = lambda y, ratio at n = 8, 16, ..., 128 (absolute changes; relative changes d(n)):")
    for lam in (-10.0, -4.0, 3.0):
        absolute = ", ".join(f"{euler_ratio_on_linear_mode(lam, 2**k, False):.2f}" for k in range(3, 8))
        relative = ", ".join(f"{euler_ratio_on_linear_mode(lam, 2**k, True):.2f}" for k in range(3, 8))
        print(f"  lambda = {lam:6}: {absolute}; {relative}")
    print("\nRichardson distance ||y_1 - y*|| / ||y*|| of each trained map (n = 1) from its limit:")
    rises = loss_rise_one_to_four_steps()
    print(
        "| variant | order used | Richardson from n = 1, 2 (seeds 0, 1, 2) | sum of the changes (seeds 0-2) "
        "| loss rise, 1 to 4 steps |"
    )
    print("|---|---|---|---|---|")
    for variant in ("heun", "rk2-gated", "bert-2x-layers", "bert", "strang", "bert-2x-tokens"):
        chosen = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        pairs = [richardson_distance(r) for r in chosen]
        print(
            f"| `{variant}` | {scheme_order(chosen[0])} | "
            + ", ".join(f"{a:.3f}" for a, _ in pairs)
            + f" (mean {statistics.mean(a for a, _ in pairs):.3f}) | "
            + ", ".join(f"{b:.3f}" for _, b in pairs)
            + f" | {rises[variant]:.3f} |"
        )
    print()


def main() -> None:
    section_stability()
    section_non_normal()
    section_prenorm_lipschitz()
    section_post_norm()
    section_adjoint()
    section_checkpointing()
    section_trained_models()


if __name__ == "__main__":
    main()
