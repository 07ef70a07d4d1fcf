"""The numbers and readings of docs/mathematics.md that are not about a tableau or a solver, each checked
against an exact reference (closed forms, float64, tiny sizes); benchmarks/mathematics_numbers.py prints
them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

REPORTS = Path(__file__).resolve().parents[1] / "reports" / "cpu-v1"


# --- stability polynomials at h = 1


def test_how_far_each_scheme_is_from_the_flow_at_minus_one_half():
    flow = math.exp(-0.5)
    off = {
        p: abs(sum((-0.5) ** k / math.factorial(k) for k in range(p + 1)) / flow - 1) for p in (1, 2, 3, 4)
    }
    assert off[1] == pytest.approx(0.1756, abs=1e-4)
    assert off[2] == pytest.approx(0.0305, abs=1e-4)
    assert off[3] == pytest.approx(0.0039, abs=1e-4)
    assert off[4] == pytest.approx(0.0004, abs=1e-4)


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.25, 0.4, 0.49, 0.5, 0.6, 0.875, 0.95])
def test_gated_rk2_imaginary_axis_interval(gamma):
    y = np.linspace(-3, 3, 6001)
    r = 1 + 1j * y + (1 - gamma) * (1j * y) ** 2
    assert np.allclose(np.abs(r) ** 2, 1 + (2 * gamma - 1) * y**2 + (1 - gamma) ** 2 * y**4)
    bound = math.sqrt(1 - 2 * gamma) / (1 - gamma) if gamma < 0.5 else 0.0
    stable = (y == 0) | ((2 * gamma - 1) + (1 - gamma) ** 2 * y**2 <= 0)  # |R(iy)|^2 - 1, divided by y^2
    assert np.array_equal(stable, np.abs(y) <= bound)
    assert np.all(np.abs(r[stable]) <= 1 + 1e-12) and np.all(np.abs(r[~stable]) > 1)


def test_gamma_seven_eighths_is_the_shifted_chebyshev_polynomial_with_the_largest_interval():
    # 1 + z + (1 - gamma) z^2 at gamma = 7/8 against T2(1 + z/4) = 2 (1 + z/4)^2 - 1
    chebyshev = np.polynomial.Polynomial([1, 0.25]) ** 2 * 2 - 1
    assert np.allclose(chebyshev.coef, [1, 1, 1 / 8])

    def real_interval(gamma: float) -> float:  # the largest beta with |R| <= 1 on [-beta, 0]
        z = -np.linspace(0, 20, 200001)
        unstable = np.abs(1 + z + (1 - gamma) * z**2) > 1 + 1e-12
        return -z[np.argmax(unstable) - 1]

    assert real_interval(7 / 8) == pytest.approx(8, abs=1e-3)  # 2 s^2 with s = 2 stages
    assert max(real_interval(g) for g in np.linspace(0.05, 0.99, 95)) <= 8 + 1e-3


def test_a_non_normal_jacobian_with_eigenvalues_inside_the_stability_region_amplifies():
    jacobian = np.array([[-1.0, 10.0], [0.0, -1.0]])
    euler = np.eye(2) + jacobian  # eigenvalue of h J at -1, the centre of Euler's stability disc
    assert np.abs(np.linalg.eigvals(euler)).max() == pytest.approx(0.0)
    assert np.linalg.norm(euler, 2) == pytest.approx(10.0)
    rk4 = sum(np.linalg.matrix_power(jacobian, k) / math.factorial(k) for k in range(5))
    assert np.abs(np.linalg.eigvals(rk4)).max() == pytest.approx(0.375)
    assert np.linalg.norm(rk4, 2) == pytest.approx(3.375)


# --- the fields


def _layer_norm(x: torch.Tensor, gain: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    centred = x - x.mean(-1, keepdim=True)
    return gain * centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + eps)


def _toy_layer(
    seed: int, field_scale: float, gain_spread: float, tokens: int = 8, width: int = 64, heads: int = 4
):
    """benchmarks/mathematics_numbers.py's toy post-norm layer (same draws): softmax attention, GELU FFN."""
    generator = torch.Generator().manual_seed(seed)

    def weight(fan_in, fan_out, scale=1.0):
        return (
            scale * torch.randn(fan_in, fan_out, generator=generator, dtype=torch.float64) / math.sqrt(fan_in)
        )

    def gain():
        return 1 + gain_spread * (2 * torch.rand(width, generator=generator, dtype=torch.float64) - 1)

    q, k, v, o = (
        weight(width, width),
        weight(width, width),
        weight(width, width),
        weight(width, width, field_scale),
    )
    up, down = weight(width, 4 * width), weight(4 * width, width, field_scale)
    gain_before, gain_attention, gain_ffn = gain(), gain(), gain()

    def attention(x):
        def split(w):  # (heads, tokens, width / heads)
            return (x @ w).view(tokens, heads, -1).transpose(0, 1)

        probs = torch.softmax(split(q) @ split(k).transpose(1, 2) / math.sqrt(width // heads), dim=-1)
        return (probs @ split(v)).transpose(0, 1).reshape(tokens, width) @ o

    def g(y):  # the post-norm layer-scope field is g(y) - y
        u = _layer_norm(y + attention(y), gain_attention)
        return u + torch.nn.functional.gelu(u @ up) @ down

    x = torch.randn(tokens, width, generator=generator, dtype=torch.float64)
    return g, attention, _layer_norm(x, gain_before), gain_ffn


def _solve(g, y, steps, rk4=False):
    h = 1 / steps
    for _ in range(steps):
        k1 = g(y) - y
        if rk4:
            k2 = g(y + h / 2 * k1) - (y + h / 2 * k1)
            k3 = g(y + h / 2 * k2) - (y + h / 2 * k2)
            k4 = g(y + h * k3) - (y + h * k3)
            k1 = (k1 + 2 * k2 + 2 * k3 + k4) / 6
        y = y + h * k1
    return y


def test_prenorm_field_jacobian_scales_inversely_with_the_residual_stream():
    _, attention, y, _ = _toy_layer(0, 1.0, 0.0)
    unit = torch.ones(y.shape[-1], dtype=torch.float64)

    def jacobian_norm(field, point):
        jac = torch.autograd.functional.jacobian(lambda z: field(z.view_as(y)).reshape(-1), point.reshape(-1))
        return torch.linalg.matrix_norm(jac, 2).item()

    prenorm = lambda z: attention(_layer_norm(z, unit, eps=0.0))  # noqa: E731
    reference = jacobian_norm(prenorm, y)
    for c in (0.5, 2.0, 8.0):  # LN(c y) = LN(y), so D(F o LN)(c y) = D(F o LN)(y) / c exactly
        assert c * jacobian_norm(prenorm, c * y) == pytest.approx(reference, rel=1e-9)
    assert jacobian_norm(attention, 4 * y) > 4 * jacobian_norm(
        attention, y
    )  # raw attention grows with its input


def test_frozen_g_relaxation_fractions():
    # dy/dt = g - y with g fixed: n Euler steps cover 1 - (1 - 1/n)^n of the way, the flow 1 - 1/e
    assert [(1 - 1 / n) ** n for n in (1, 2, 4)] == [0.0, 0.25, 0.31640625]
    g, y = 3.0, 1.0
    assert _solve(lambda z: g, y, 1) == g
    assert (g - _solve(lambda z: g, y, 256, rk4=True)) / (g - y) == pytest.approx(math.exp(-1), rel=1e-9)


def _refinement(field_scale, gain_spread, seed):
    """Fractions of the one-step update that the limit n -> infinity removes: before LN_ffn and after it."""
    g, _, y, gain_ffn = _toy_layer(seed, field_scale, gain_spread)
    one, limit = _solve(g, y, 1), _solve(g, y, 64, rk4=True)
    before = ((limit - one).norm() / (one - y).norm()).item()
    out_one = _layer_norm(one, gain_ffn)
    after = ((_layer_norm(limit, gain_ffn) - out_one).norm() / (out_one - y).norm()).item()
    return before, after


@pytest.mark.parametrize(
    "field_scale, gain_spread, low, high",
    [(0.1, 0.0, 0.06, 0.09), (0.1, 0.5, 0.16, 0.26), (1.0, 0.0, 0.45, 0.54), (1.0, 0.5, 0.40, 0.57)],
    ids=["matched-weak", "mismatched-weak", "matched-strong", "mismatched-strong"],
)
def test_how_much_refinement_moves_a_post_norm_block_depends_on_gains_and_field_strength(
    field_scale, gain_spread, low, high
):
    # The chapter's toy table (section 5.3): the frozen-G reading predicts 1/e = 37% in every case.
    removed = [_refinement(field_scale, gain_spread, seed)[0] for seed in range(4)]
    assert low <= min(removed) and max(removed) <= high


def test_with_matched_gains_a_post_norm_block_output_moves_only_at_second_order():
    after = [_refinement(field_scale, 0.0, 0)[1] for field_scale in (0.1, 0.05, 0.025)]
    assert after[0] / after[1] == pytest.approx(2, rel=0.05)  # the relative move halves with the update
    assert after[1] / after[2] == pytest.approx(2, rel=0.05)


def test_bert_ode_post_norm_layer_block_at_bert_initialisation_barely_moves_under_refinement():
    from bert_ode import BertOdeConfig, BertOdeModel

    torch.manual_seed(0)
    config = BertOdeConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=16,
        ode_scope="layer",
        norm_position="post",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertOdeModel(config).double().eval()
    ids = torch.randint(5, 100, (2, 8))
    with torch.no_grad():
        one = model(input_ids=ids, output_hidden_states=True)
        model.config.ode_steps = 32
        fine = model(input_ids=ids).last_hidden_state
    update = (one.last_hidden_state - one.hidden_states[0]).norm()
    assert (fine - one.last_hidden_state).norm() / update < 0.05  # frozen-G reading: 37%


# --- the gated RK2


def _gated_rk2_error(w1, w2, b, steps):
    a = np.array([[-0.5, 1.0], [-1.0, -0.2]])

    def field(y):
        return a @ y + 0.3 * np.tanh(y[::-1])

    def solve(n):
        y, h = np.array([1.0, 0.5]), 1 / n
        for _ in range(n):
            k1 = field(y)
            k2 = field(y + h * k1)
            gamma = 1 / (1 + math.exp(-(w1 @ k1 + w2 @ k2 + b)))
            y = y + h * (gamma * k1 + (1 - gamma) * k2)
        return y

    y, h = np.array([1.0, 0.5]), 1 / 2048  # the exact flow, by classic RK4
    for _ in range(2048):
        k1 = field(y)
        k2 = field(y + h / 2 * k1)
        k3 = field(y + h / 2 * k2)
        k4 = field(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    reference = y
    return [np.linalg.norm(solve(n) - reference) for n in steps]


def test_gated_rk2_is_second_order_exactly_when_the_h_to_0_gate_is_one_half():
    steps = (16, 32, 64)
    w = np.array([0.8, -0.3])
    generic = _gated_rk2_error(w, 0.5 * w, 0.2, steps)
    balanced = _gated_rk2_error(w, -w, 0.0, steps)  # (W1 + W2) F + b = 0: the gate tends to 1/2 as h -> 0
    generic_order = math.log2(generic[-2] / generic[-1])
    balanced_order = math.log2(balanced[-2] / balanced[-1])
    assert generic_order == pytest.approx(1, abs=0.1)
    assert balanced_order == pytest.approx(2, abs=0.1)


def test_two_term_error_with_same_signs_gives_ratios_falling_from_4_to_2():
    # error C1 h + C2 h^2; d(h) = e(h) - e(h/2); d(h)/d(h/2) = (8 + 12 x) / (4 + 3 x), x = C2 h / C1 >= 0
    c1, c2 = 0.3, 5.0

    def error(h):
        return c1 * h + c2 * h * h

    hs = [2.0**-k for k in range(12)]
    ratios = [(error(h) - error(h / 2)) / (error(h / 2) - error(h / 4)) for h in hs]
    assert ratios == pytest.approx([(8 + 12 * c2 * h / c1) / (4 + 3 * c2 * h / c1) for h in hs])
    assert all(2 < r < 4 for r in ratios)
    assert all(
        a > b for a, b in zip(ratios, ratios[1:], strict=False)
    )  # monotone: it cannot rise towards 4 as n grows


def _heun(matrix, y, steps):
    h = 1 / steps
    for _ in range(steps):
        k1 = matrix @ y
        y = y + h / 2 * (k1 + matrix @ (y + h * k1))
    return y


def _doubling_ratios(matrix, y0, steps):
    outputs = {n: _heun(matrix, y0, n) for n in steps}
    change = [
        np.linalg.norm(outputs[n] - outputs[2 * n]) / np.linalg.norm(outputs[2 * n]) for n in steps[:-1]
    ]
    return [a / b for a, b in zip(change, change[1:], strict=False)]


def test_heun_doubling_ratio_tends_to_4_from_above_for_contractive_and_from_below_for_expanding_modes():
    steps = [2**k for k in range(6, 11)]
    contractive = _doubling_ratios(np.array([[-3.0]]), np.array([1.0]), steps)
    expanding = _doubling_ratios(np.array([[3.0]]), np.array([1.0]), steps)
    assert all(4 < r < 4.5 for r in contractive) and all(3.5 < r < 4 for r in expanding)


def test_a_stiff_contractive_mode_shows_as_instability_then_a_ratio_of_4_from_below():
    # a slow rotation and a fast mode slaved to it, y3' = -lam (y3 - y1): Heun is unstable while
    # h lam > 2 (n < 100), and the ratio is 4 from the first step count inside the stability interval on,
    # approached from below although the fast mode contracts (docs/mathematics.md, section 13)
    lam = 200.0
    matrix = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [lam, 0.0, -lam]])
    ratios = _doubling_ratios(matrix, np.array([1.0, 0.0, 0.3]), [2**k for k in range(4, 12)])
    assert max(ratios[:3]) > 1e6  # n = 16, 32, 64: the differences explode
    assert [round(r, 4) for r in ratios[3:]] == [3.9963, 3.9982, 3.9991]  # n = 128, 256, 512
    assert all(r < 4 for r in ratios[3:]) and ratios[3] < ratios[4] < ratios[5]


def _euler_ratios(lam: float, steps: list[int], relative: bool) -> list[float]:
    """d(n) / d(2n) of Euler on y' = lam y over [0, 1], d the change of y(1) when the steps double."""
    value = {n: (1 + lam / n) ** n for n in [*steps, 2 * steps[-1]]}
    change = [abs(value[n] - value[2 * n]) / (abs(value[2 * n]) if relative else 1.0) for n in steps]
    return [round(a / b, 2) for a, b in zip(change, change[1:], strict=False)]


def test_euler_ratios_from_below_also_for_strongly_contractive_modes():
    # relative error -lam^2 h / 2 + lam^3 (3 lam + 8) h^2 / 24: opposite signs below lam = -8/3 too
    assert _euler_ratios(-4.0, [8, 16, 32, 64], relative=False) == [1.56, 1.83, 1.93]
    # the relative changes d(n) carry (1 + e(h/4)) / (1 + e(h/2)) ~ 1 + lam^2 h / 8: from below for lam < -8
    assert _euler_ratios(-10.0, [16, 32, 64, 128], relative=True) == [1.45, 1.82, 1.94]
    assert _euler_ratios(-4.0, [16, 32, 64, 128], relative=True) == [2.12, 2.06, 2.03]
    assert all(r < 2 for r in _euler_ratios(3.0, [16, 32, 64, 128], relative=True))


# --- splitting


def _expm(m):
    return torch.linalg.matrix_exp(torch.as_tensor(m)).numpy()


def test_strang_conditions_are_sufficient_not_necessary():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    # commuting fields: even Lie splitting with untied pieces is exact
    c = a @ a + 0.5 * a
    assert np.allclose(_expm(c) @ _expm(a), _expm(a + c))

    # tied halves, explicit Euler for the first half, its adjoint (implicit Euler) for the second: symmetric,
    # so second order although each sub-solver is first order
    def composition(h):
        first = np.eye(3) + h / 2 * b
        second = np.linalg.inv(np.eye(3) - h / 2 * b)
        return second @ _expm(h * a) @ first

    def euler_euler(h):  # both halves explicit Euler: first order (local error O(h^2))
        return (np.eye(3) + h / 2 * b) @ _expm(h * a) @ (np.eye(3) + h / 2 * b)

    def local(step, h):
        return np.linalg.norm(step(h) - _expm(h * (a + b)))

    assert math.log2(local(composition, 0.02) / local(composition, 0.01)) == pytest.approx(3, abs=0.05)
    assert math.log2(local(euler_euler, 0.02) / local(euler_euler, 0.01)) == pytest.approx(2, abs=0.05)


# --- gradients


def test_scalar_adjoint_example_flow_discrete_and_continuous_adjoint():
    w, y0 = 1.5, 0.8
    s = math.sinh(w * y0) * math.exp(w)  # the flow of y' = tanh(w y): sinh(w y(t)) = sinh(w y0) e^{w t}
    flow = (y0 * math.cosh(w * y0) + math.sinh(w * y0)) * math.exp(w) / math.sqrt(1 + s * s) / w
    flow -= math.asinh(s) / w**2
    y1 = y0 + math.tanh(w * y0)
    discrete = y0 * (1 - math.tanh(w * y0) ** 2)  # the vector-Jacobian product at y0, the start of the step
    adjoint = y1 * (1 - math.tanh(w * y1) ** 2)  # ... at y1, the end
    assert (round(flow, 3), round(discrete, 3), round(adjoint, 3)) == (0.132, 0.244, 0.048)
    # the flow gradient against an integration of the sensitivity equation s' = w sech^2 s + y sech^2
    y, g, h = y0, 0.0, 1 / 2000

    def rhs(y, g):
        sech2 = 1 - math.tanh(w * y) ** 2
        return math.tanh(w * y), w * sech2 * g + y * sech2

    for _ in range(2000):
        k1 = rhs(y, g)
        k2 = rhs(y + h / 2 * k1[0], g + h / 2 * k1[1])
        k3 = rhs(y + h / 2 * k2[0], g + h / 2 * k2[1])
        k4 = rhs(y + h * k3[0], g + h * k3[1])
        y += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        g += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    assert g == pytest.approx(flow, rel=1e-10)


def test_binomial_checkpointing_counts():
    # c checkpoints and r recomputations reverse C(c + r, c) steps (Griewank 1992)
    assert math.comb(4 + 4, 4) == 70 >= 64 > math.comb(4 + 3, 4) == 35


# --- the trained models (committed figures)


def _signatures():
    runs = []
    for seed in range(3):
        for run in json.loads((REPORTS / f"elasticity_signature-seed-{seed}.json").read_text()):
            runs.append({**run, "variant": Path(run["run"]).parts[-3]})
    return runs


def test_the_chapters_reading_of_the_euler_ratios_is_the_reports():
    euler = [r for r in _signatures() if r["ode_method"] == "euler"]
    ratios = [v for r in euler for v in r["ratio"].values()]
    assert (round(min(ratios), 2), round(max(ratios), 2)) == (1.39, 2.47)
    coarse = [r["observed_order"]["2"] for r in euler if r["variant"] in ("bert", "bert-2x-tokens")]
    assert (round(min(coarse), 2), round(max(coarse), 2)) == (0.48, 0.74)
    through_8 = [r["observed_order"][n] for r in euler for n in ("2", "4", "8")]
    assert 0.47 < min(through_8) and max(through_8) < 0.91
    fine = [r["ratio"]["16"] for r in euler]
    assert (round(min(fine), 2), round(max(fine), 2)) == (1.84, 1.95)


def test_richardson_distance_of_the_trained_maps_from_their_limits():
    distance = {}
    for run in _signatures():
        p = 2 if run["ode_method"] == "heun" else 1
        distance.setdefault(run["variant"], []).append(run["relative_change"]["1"] * 2**p / (2**p - 1))
    assert [round(d, 3) for d in distance["heun"]] == [0.151, 0.135, 0.172]
    assert [round(d, 3) for d in distance["bert"]] == [0.456, 0.421, 0.426]
    assert max(distance["heun"]) < min(min(d) for v, d in distance.items() if v != "heun")
    # ordered by mean distance, the variants are ordered by their loss rise from 1 to 4 steps (report.md)
    report = (REPORTS / "report.md").read_text()
    table = report[report.index("## Depth elasticity: validation MLM loss") :].split("\n\n")[1]
    rise = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rise[cells[0].strip("`")] = float(cells[3].split()[0]) - float(cells[1].split()[0])
    by_distance = sorted(distance, key=lambda v: sum(distance[v]))
    assert [round(rise[v], 3) for v in by_distance] == [0.036, 0.036, 0.053, 0.231, 0.411, 0.844]
