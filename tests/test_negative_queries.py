"""Negative queries: the conditioner against its formula, the Separator's third input, the
mixer's partners and negative-query draws, training with them, evaluation and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import np64, run_two_gloo_processes
from hypothesis import given
from hypothesis import strategies as st
from train_setup import TINY as TINY_TRAIN
from train_setup import NoNormBackbone, dataset, params, tiny_config

from torchlass import Separator
from torchlass.data import (
    BatchMixer,
    RecipeRow,
    ValidationMixtures,
    draw_negative_queries,
    match_energy,
    next_partners,
    read_validation_recipe,
    write_validation_recipe,
)
from torchlass.errors import DTypeError, NonFiniteError, ShapeError, ValueRangeError
from torchlass.nn import QueryCondition, query_condition
from torchlass.query import HashedTextEncoder
from torchlass.recipes import (
    Trainer,
    apply_overrides,
    build_separator,
    evaluate_separator,
    get_config,
)
from torchlass.separator import separate

TINY = {"condition_size": 8, "n_fft": 64, "hop_length": 32, "stem_width": 2, "widths": (2, 4),
        "pools": ((2, 2), (2, 2)), "sample_rate": 8000}


def _film_weights_random(sep: Separator, seed: int = 0) -> Separator:
    """Non-zero FiLM layers (they start at zero, which would hide the condition)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sep.named_parameters():
            if "film" in name or "shift" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return sep.eval()


# --- the conditioner ------------------------------------------------------------------------

@given(st.integers(1, 4), st.integers(1, 6), st.floats(1e-3, 1e3), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_query_condition_is_the_concatenation_with_zeros_for_none(batch, dim, scale, absent,
                                                                   seed):
    g = torch.Generator().manual_seed(seed)
    positive = scale * torch.randn(batch, dim, generator=g, dtype=torch.float64)
    negative = None if absent else scale * torch.randn(batch, dim, generator=g,
                                                       dtype=torch.float64)
    expected = np.concatenate([np64(positive), np.zeros((batch, dim)) if negative is None
                               else np64(negative)], axis=1)
    got = query_condition(positive, negative)
    assert got.dtype == torch.float64 and got.shape == (batch, 2 * dim)
    np.testing.assert_array_equal(np64(got), expected)
    assert torch.equal(QueryCondition(dim)(positive, negative), got)
    if negative is None:  # None is exactly a row of zeros
        assert torch.equal(got, query_condition(positive, torch.zeros_like(positive)))


def test_query_condition_gradcheck():
    p = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    n = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(query_condition, (p, n))


def test_query_condition_errors():
    p = torch.zeros(2, 3)
    with pytest.raises(ShapeError, match=r"^query_condition\(\): argument 'negative' expected "
                       r"the shape of 'positive' \(2, 3\) \(batch, dim\), got \(2, 4\)$"):
        query_condition(p, torch.zeros(2, 4))
    with pytest.raises(DTypeError, match=r"^query_condition\(\): argument 'negative' expected "
                       r"the dtype of 'positive' torch.float32, got torch.float64$"):
        query_condition(p, torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ShapeError, match=r"^query_condition\(\): argument 'positive'"):
        query_condition(torch.zeros(3))
    with pytest.raises(ShapeError, match=r"^QueryCondition\(\): argument 'positive' expected 4 "
                       r"values per query"):
        QueryCondition(4)(p)
    assert list(QueryCondition(4).state_dict()) == []


# --- the separator ----------------------------------------------------------------------------

def test_zero_negative_is_exactly_none_and_a_negative_changes_the_output():
    sep = _film_weights_random(Separator.srpol_negative_query(**TINY))
    g = torch.Generator().manual_seed(1)
    x, c, n = (torch.randn(3, 1, 1000, generator=g), torch.randn(3, 8, generator=g),
               torch.randn(3, 8, generator=g))
    with torch.no_grad():
        none = sep(x, c)
        assert torch.equal(none, sep(x, c, torch.zeros(3, 8)))
        given_ = sep(x, c, n)
        assert not torch.allclose(given_, none)
        # A zero row is "none" for that item only.
        mixed = sep(x, c, torch.cat([n[:1], torch.zeros(2, 8)]))
        torch.testing.assert_close(mixed[1:], none[1:], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(mixed[:1], given_[:1], rtol=1e-6, atol=1e-6)


def test_positive_weights_with_zero_negative_weights_are_the_plain_model():
    """FiLM is linear in [positive, negative]: copying a plain model's FiLM weights into the
    positive half and zeros into the negative half gives the plain model, whatever the
    negative."""
    plain = _film_weights_random(Separator.srpol_system1(**TINY), seed=3)
    neg = Separator.srpol_negative_query(**TINY).eval()
    weights = {}
    for key, value in plain.state_dict().items():
        target = neg.state_dict()[key]
        if target.shape != value.shape:  # a FiLM weight: (width, 2 * dim)
            value = torch.cat([value, torch.zeros_like(value)], dim=1)
        weights[key] = value
    neg.load_state_dict(weights)
    g = torch.Generator().manual_seed(2)
    x, c = torch.randn(2, 1, 700, generator=g), torch.randn(2, 8, generator=g)
    with torch.no_grad():
        assert torch.equal(neg(x, c, torch.randn(2, 8, generator=g)), neg(x, c))
        torch.testing.assert_close(neg(x, c), plain(x, c), rtol=1e-6, atol=1e-6)


def test_presets_without_query_keep_their_state_dict_keys():
    for name in ("dcase2024_baseline", "srpol_system1", "complex_ratio_mask"):
        sep = getattr(Separator, name)(**TINY)
        assert not sep.takes_negative
        assert {k.split(".")[0] for k in sep.state_dict()} <= {"stft", "features", "backbone",
                                                               "head", "istft"}
        assert not hasattr(sep, "query")
    plain, neg = Separator.srpol_system1(**TINY), Separator.srpol_negative_query(**TINY)
    assert plain.state_dict().keys() == neg.state_dict().keys()  # the conditioner has none
    widened = [k for k, v in neg.state_dict().items() if v.shape != plain.state_dict()[k].shape]
    assert widened and all(k.endswith("shift.weight") for k in widened)
    assert all(neg.state_dict()[k].shape[1] == 2 * 8 for k in widened)


def test_negative_errors_name_the_argument():
    x, c = torch.randn(2, 1, 500), torch.randn(2, 8)
    plain = Separator.srpol_system1(**TINY)
    with pytest.raises(ValueRangeError, match=r"^Separator\.forward\(\): argument 'negative' "
                       r"expected None: this separator \(srpol_system1\) has no negative-query "
                       r"conditioning \(the srpol_negative_query preset takes one\), got a "
                       r"tensor of shape \(2, 8\)$"):
        plain(x, c, torch.zeros(2, 8))
    neg = Separator.srpol_negative_query(**TINY)
    with pytest.raises(ShapeError, match=r"^Separator\.forward\(\): argument 'negative' expected "
                       r"the shape of 'condition' \(2, 8\) \(batch, condition_size\), got "
                       r"\(2, 7\)$"):
        neg(x, c, torch.zeros(2, 7))
    with pytest.raises(DTypeError, match=r"^Separator\.forward\(\): argument 'negative' "
                       r"expected the model's dtype torch.float32, got torch.float64"):
        neg(x, c, torch.zeros(2, 8, dtype=torch.float64))
    with pytest.raises(NonFiniteError, match=r"^Separator\.forward\(\): argument 'negative'"):
        neg(x, c, torch.full((2, 8), float("nan")))
    with pytest.raises(ShapeError, match=r"^Separator\.forward\(\): argument 'condition' "
                       r"expected 8 values per query"):
        neg(x, torch.zeros(2, 16))
    with pytest.raises(ShapeError, match=r"^separate\(\): argument 'negative' expected the shape "
                       r"of 'condition' \(2, 8\) \(queries, dim\), got \(1, 8\)$"):
        separate(neg, x, c, negative=torch.zeros(1, 8), chunk_length=400)
    with pytest.raises(ValueRangeError, match=r"^Separator\.separate\(\): argument 'negative' "
                       r"expected None"):
        plain.separate(x, c, negative=torch.zeros(2, 8), chunk_seconds=0.05,
                       overlap_seconds=0.01)


def test_separate_passes_the_negative_to_every_chunk():
    def model(x, c, n):  # point-wise stand-in: the mixture scaled by query minus negative
        return (x * (c - n)[:, :1, None])[:, None]

    x = torch.ones(1, 1000)
    c, n = torch.tensor([[3.0], [1.0]]), torch.tensor([[1.0], [0.0]])
    out = separate(model, x, c, negative=n, chunk_length=300, overlap=50)
    assert out.shape == (2, 1, 1, 1000)
    assert out[0].unique().tolist() == [2.0] and out[1].unique().tolist() == [1.0]
    sep = _film_weights_random(Separator.srpol_negative_query(**TINY))
    x, c, n = torch.randn(2, 1, 900), torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():  # one chunk: exactly the model's output
        assert torch.equal(sep.separate(x, c, negative=n, chunk_seconds=1.0,
                                           overlap_seconds=0.1), sep(x, c, n))


def test_negative_preset_round_trips_through_save_pretrained(tmp_path):
    sep = _film_weights_random(Separator.srpol_negative_query(**TINY))
    loaded = Separator.from_pretrained(sep.save_pretrained(tmp_path / "neg"))
    assert loaded.takes_negative and loaded.preset == sep.preset
    x, c, n = torch.randn(2, 1, 600), torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x, c, n), sep(x, c, n))


# --- mixing -------------------------------------------------------------------------------------

def test_partner_is_the_interferer_index():
    g = torch.Generator().manual_seed(0)
    sources = 0.3 * torch.randn(5, 1, 64, generator=g, dtype=torch.float64)
    out = BatchMixer(seed=0)(sources)
    assert torch.equal(out.partner, next_partners(5))
    labels = [("a",), ("a",), ("b",), ("c",), ("b",)]
    out = BatchMixer(seed=4, pairing="disjoint")(sources, labels)
    for n, m in enumerate(out.partner.tolist()):
        assert m != n and not set(labels[n]) & set(labels[m])
        # The interferer is a scaled copy of its partner clip.
        ratio = np64(out.interferer[n]) / np64(sources[m])
        np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-9)


@given(st.integers(2, 12), st.floats(0.0, 1.0), st.integers(0, 2**31 - 2), st.booleans())
def test_negative_draws_leave_the_mixtures_unchanged(batch, prob, seed, disjoint):
    """``rand(batch) < prob`` from a generator seeded ``seed + 1``; the pairs and SNRs (from
    the generator seeded ``seed``) and so the mixtures are those of a mixer without them."""
    sources = torch.randn(batch, 1, 16, dtype=torch.float64)
    labels = [(str(i % 3),) for i in range(batch)] if disjoint else None
    pairing = "disjoint" if disjoint else "next"
    out = BatchMixer(seed=seed, negative_query_prob=prob, pairing=pairing)(sources, labels)
    plain = BatchMixer(seed=seed, pairing=pairing)(sources, labels)
    for got, want in zip(out, plain, strict=True):
        if want is not None and want.dtype != torch.bool:
            assert torch.equal(got, want)
    g = torch.Generator().manual_seed(seed + 1)
    expected = (torch.zeros(batch, dtype=torch.bool) if prob == 0
                else torch.rand(batch, generator=g) < prob)
    assert out.use_negative.dtype == torch.bool and torch.equal(out.use_negative, expected)


def test_negative_draw_frequency_and_no_draw_at_zero():
    mixer = BatchMixer(seed=0, negative_query_prob=0.3)
    use = torch.cat([mixer(torch.randn(50, 1, 8)).use_negative for _ in range(40)])
    # 2000 Bernoulli(0.3) draws: the mean is within 5 standard deviations (0.051).
    assert abs(use.double().mean().item() - 0.3) < 5 * (0.3 * 0.7 / 2000) ** 0.5
    assert BatchMixer(seed=0, negative_query_prob=1.0)(torch.randn(7, 1, 8)).use_negative.all()
    # prob = 0 draws nothing: the same mixtures as a mixer without the option.
    a, b = BatchMixer(seed=5), BatchMixer(seed=5, negative_query_prob=0.0)
    for _ in range(3):
        sources = torch.randn(4, 1, 16)
        x, y = a(sources), b(sources)
        assert torch.equal(x.mixture, y.mixture) and not y.use_negative.any()


def test_negative_draws_resume_exactly():
    sources = torch.randn(6, 1, 16)
    mixer = BatchMixer(seed=2, negative_query_prob=0.5, pairing="disjoint")
    labels = [(str(i),) for i in range(6)]
    mixer(sources, labels)
    state = mixer.state_dict()
    expected = [mixer(sources, labels) for _ in range(3)]
    other = BatchMixer(seed=77, negative_query_prob=0.5, pairing="disjoint")
    other.load_state_dict(state)
    for want in expected:
        got = other(sources, labels)
        assert torch.equal(got.use_negative, want.use_negative)
        assert torch.equal(got.partner, want.partner)
    old = {"generator": state["generator"]}  # a state saved before negative queries
    fresh = BatchMixer(seed=2, negative_query_prob=0.5, pairing="disjoint")
    fresh.load_state_dict(old)
    assert torch.equal(fresh(sources, labels).mixture, expected[0].mixture)


@pytest.mark.parametrize("prob", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_negative_probability_out_of_range(prob):
    with pytest.raises(ValueRangeError, match=r"^BatchMixer\(\): argument 'negative_query_prob' "
                       r"expected a number in \[0, 1\], got "):
        BatchMixer(negative_query_prob=prob)
    with pytest.raises(ValueRangeError, match=r"^draw_negative_queries\(\): argument 'prob'"):
        draw_negative_queries(3, prob)


def test_match_energy_of_partner_is_the_mixers_interferer_before_the_snr_gain():
    sources = 0.1 * torch.randn(4, 1, 32, dtype=torch.float64)
    out = BatchMixer(seed=9, negative_query_prob=0.5)(sources)
    scaled = match_energy(sources[out.partner], sources)
    ratio = (out.interferer / scaled).reshape(4, -1)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-9, atol=0)


# --- training ---------------------------------------------------------------------------------

class Recording(torch.nn.Module):
    """A separator that records the queries it is called with."""

    def __init__(self, inner: Separator) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[torch.Tensor, ...]] = []

    @property
    def takes_negative(self) -> bool:
        return self.inner.takes_negative

    def forward(self, mixture, condition, negative=None):
        self.calls.append((condition.detach().clone(),
                           None if negative is None else negative.detach().clone()))
        return self.inner(mixture, condition, negative)


def _neg_config(tmp_path, *extra):
    return tiny_config(tmp_path, "train.steps=2", *extra, preset="srpol_negative_query")


def test_trainer_gives_the_interferer_caption_as_negative(tmp_path):
    cfg = _neg_config(tmp_path, "data.negative_query_prob=0.5")
    torch.manual_seed(0)
    model = Recording(build_separator(cfg.model))
    trainer = Trainer(cfg, train_set=dataset(), separator=model, progress=False)
    batch = next(iter(trainer.loader()))
    state = trainer.mixer.state_dict()
    trainer.train_step(batch)
    reference = BatchMixer(seed=0, negative_query_prob=0.5)
    reference.load_state_dict(state)
    mixed = reference(batch["waveform"])
    condition, negative = model.calls[-1]
    encoder = HashedTextEncoder(dim=16)
    assert torch.equal(condition, encoder(batch["caption"]))
    for n, (m, use) in enumerate(zip(mixed.partner.tolist(), mixed.use_negative.tolist(),
                                     strict=True)):
        want = encoder([batch["caption"][m]])[0] if use else torch.zeros(16)
        assert torch.equal(negative[n], want)


def test_trainer_without_negatives_calls_the_model_with_two_arguments(tmp_path):
    cfg = _neg_config(tmp_path, "data.negative_query_prob=0")
    model = Recording(build_separator(cfg.model))
    Trainer(cfg, train_set=dataset(), separator=model, progress=False).fit()
    assert len(model.calls) == 2 and all(n is None for _, n in model.calls)


def test_trainer_resume_with_negatives_is_exact(tmp_path):
    extra = ("train.steps=4", "data.negative_query_prob=0.5", "data.pairing=disjoint")
    straight = Trainer(_neg_config(tmp_path / "a", *extra), train_set=dataset(), progress=False)
    straight.fit()
    first = Trainer(_neg_config(tmp_path / "b", *extra), train_set=dataset(), progress=False)
    first.fit(steps=2)
    path = first.save_checkpoint(tmp_path / "mid.pt")
    second = Trainer(_neg_config(tmp_path / "b", *extra), train_set=dataset(), progress=False)
    second.resume(path)
    second.fit()
    a, b = params(straight.model), params(second.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trainer_config_errors(tmp_path):
    with pytest.raises(ValueRangeError, match=r"^Trainer\(\): argument 'config' expected "
                       r"data.negative_query_prob = 0 for a model without negative-query "
                       r"conditioning \(model.architecture = 'srpol_system1'; "
                       r"'srpol_negative_query' takes one\), got 0.5$"):
        Trainer(tiny_config(tmp_path, "data.negative_query_prob=0.5"), train_set=dataset(),
                progress=False)
    with pytest.raises(ValueRangeError, match=r"^Trainer\(\): argument 'config' expected "
                       r"data.negative_query_prob in \[0, 1\], got 2.0$"):
        Trainer(_neg_config(tmp_path, "data.negative_query_prob=2"), train_set=dataset(),
                progress=False)
    preset = get_config("srpol_negative_query")
    assert preset.data.negative_query_prob == 0.5
    assert build_separator(preset.model).takes_negative


def ddp_negative_setup(batch_size: int) -> tuple[Trainer, list[torch.Tensor]]:
    """A trainer with negative queries on a model without BatchNorm, and the list that
    records every negative the model is given."""
    from torchlass.masks import RealImagMaskHead
    from torchlass.nn import RealImagFeatures
    from torchlass.stft import ISTFT, STFT

    cfg = apply_overrides(get_config("srpol_negative_query"), [
        *TINY_TRAIN, f"data.batch_size={batch_size}", "data.pairing=disjoint", "train.steps=3",
        "train.out_dir=", "optim.lr=1e-2", "data.negative_query_prob=0.5"])
    torch.manual_seed(0)
    model = Separator(NoNormBackbone(32), features=RealImagFeatures(33, normalize=False),
                      head=RealImagMaskHead(), stft=STFT(64, 32), istft=ISTFT(64, 32),
                      sample_rate=8000, query=QueryCondition(16))
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda _, args: seen.append(args[2].detach().clone()))
    return Trainer(cfg, train_set=dataset(n=8), separator=model, device="cpu",
                   progress=False), seen


WORKER = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_negative_queries import ddp_negative_setup
trainer, seen = ddp_negative_setup(batch_size=2)
trainer.fit()
torch.save({{"seen": seen, "model": trainer.model.state_dict()}},
           {out!r} + f"/rank{{trainer.dist.rank}}.pt")
"""


@pytest.mark.slow
def test_ddp_gives_the_negatives_of_one_process_on_the_global_batch(tmp_path):
    tests = str(Path(__file__).resolve().parent)
    run_two_gloo_processes(WORKER.format(tests=tests, out=str(tmp_path)), tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    single, seen = ddp_negative_setup(batch_size=4)
    single.fit()
    assert len(seen) == 3 and any(bool(n.any()) for n in seen)
    for step, negatives in enumerate(seen):
        for rank, got in enumerate(ranks):
            assert torch.equal(got["seen"][step], negatives[2 * rank: 2 * rank + 2])
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ranks[0]["model"][key], value, rtol=1e-5, atol=1e-6)


# --- evaluation -------------------------------------------------------------------------------

def test_recipe_noise_caption_column_round_trips(tmp_path):
    rows = [RecipeRow("s0", "n0", -3.0, "a dog", "rain falling"),
            RecipeRow("s1", "n1", 4.0, "rain", "a dog barking")]
    write_validation_recipe(tmp_path / "with.csv", rows)
    assert read_validation_recipe(tmp_path / "with.csv") == rows
    (tmp_path / "old.csv").write_text("source,noise,snr,caption,extra\ns0,n0,1,a dog,x\n")
    assert read_validation_recipe(tmp_path / "old.csv")[0].noise_caption == ""


def test_evaluate_with_negative_uses_the_noise_caption(tmp_path):
    from helpers import write_noise_wav

    for i, name in enumerate(("s0", "n0")):
        write_noise_wav(tmp_path / f"{name}.wav", seconds=0.1, rate=8000, seed=i)
    rows = [RecipeRow("s0", "n0", 0.0, "a dog", "rain falling")]
    items = list(ValidationMixtures(rows, tmp_path, sample_rate=8000))
    assert items[0]["noise_caption"] == "rain falling"
    sep = _film_weights_random(Separator.srpol_negative_query(**TINY))
    model = Recording(sep)
    encoder = HashedTextEncoder(dim=8)
    with_neg = evaluate_separator(model, items, encoder, negative=True)
    assert torch.equal(model.calls[-1][1], encoder(["rain falling"]))
    without = evaluate_separator(model, items, encoder)
    assert model.calls[-1][1] is None and with_neg[0].sdr != without[0].sdr
    with pytest.raises(ValueRangeError, match=r"^evaluate_separator\(\): argument 'items' "
                       r"expected a 'noise_caption' in every item with negative=True, got none "
                       r"in item 0"):
        evaluate_separator(model, [dict(items[0], noise_caption="")], encoder, negative=True)
    with pytest.raises(ValueRangeError, match=r"^evaluate_separator\(\): argument 'negative' "
                       r"expected False for a separator without negative-query conditioning"):
        evaluate_separator(Separator.srpol_system1(**TINY), items, encoder, negative=True)


# --- export -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_exported_negative_preset_equals_eager(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from torchlass.export import OnnxSeparator, export_onnx, export_program, export_signature

    sep = _film_weights_random(Separator.srpol_negative_query(**TINY))
    signature = export_signature(sep)
    assert signature.takes_negative and signature.condition_size == 8
    program = export_program(sep)
    path = export_onnx(sep, tmp_path / "neg.onnx", program=program)
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["mixture", "condition",
                                                                  "negative"]
    runner = OnnxSeparator(path, threads=1)
    assert runner.takes_negative
    for length, batch in ((1001, 1), (4003, 3)):
        g = torch.Generator().manual_seed(length)
        x = 0.1 * torch.randn(batch, 1, length, generator=g)
        c, n = torch.randn(batch, 8, generator=g), torch.randn(batch, 8, generator=g)
        with torch.no_grad():
            for queries in ((c, n), (c,)):
                ref = sep(x, *queries)
                torch.testing.assert_close(program.module()(x, c, *queries[1:] or
                                                            (torch.zeros_like(c),)),
                                           ref, rtol=0, atol=1e-5)
                assert float((runner(x, *queries) - ref).abs().max()) < 1e-4

