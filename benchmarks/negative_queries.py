"""Negative queries on the synthetic collection: what telling the model what to leave out buys.

Two separators are trained with the same budget (steps, batch, seed, data, widths, STFT) as
``torchlass demo`` trains (SRPOL system 1 on the synthetic collection at 8 kHz, hashed text
encoder): ``srpol_system1`` (the plain model) and ``srpol_negative_query`` (the same network,
its FiLM layers reading ``[query, negative]``), the latter given its interferer's caption as
the negative query on a fraction ``--prob`` of the training mixtures. Both start from the same
weights (the FiLM layers, zero at initialisation, widened with zeros for the negative half), so
they are the same function at step 0, and see the same clips in the same mixtures (the mixer
draws the negative queries from a generator of their own). Both are scored on the
same held-out mixtures (each held-out clip against a clip of another kind), with the
challenge protocol (mean SDRi, dB):

- (a) the negative-query model given the interferer's caption as the negative;
- (b) the same model without a negative (a zero row): the cost when none is given;
- (c) the plain model.

It also times a forward pass of both trained models and of the conditioner alone. Writes
``results.json`` and ``table.md`` to ``--out``. Not a test: run it by hand, e.g.

    OMP_NUM_THREADS=1 python benchmarks/negative_queries.py --out runs/negative_queries
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from torchlass.nn import query_condition
from torchlass.query import CachedTextEncoder, HashedTextEncoder
from torchlass.recipes import (
    Trainer,
    apply_overrides,
    build_separator,
    evaluate_separator,
    summarize,
)
from torchlass.recipes.demo import DemoSettings, demo_config, demo_data


def start_from(plain: torch.nn.Module, negative: torch.nn.Module) -> None:
    """Load ``plain``'s weights into ``negative``, FiLM weights widened with zeros."""
    weights = {}
    for key, value in plain.state_dict().items():
        shape = negative.state_dict()[key].shape
        weights[key] = value if value.shape == shape else torch.cat(
            [value, value.new_zeros(value.shape[0], shape[1] - value.shape[1])], dim=1)
    negative.load_state_dict(weights)


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/negative_queries")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-clips-per-kind", type=int, default=48)
    parser.add_argument("--heldout-clips-per-kind", type=int, default=8)
    parser.add_argument("--prob", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = DemoSettings(steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                            train_clips_per_kind=args.train_clips_per_kind,
                            heldout_clips_per_kind=args.heldout_clips_per_kind)
    data = demo_data(settings, out)
    items, train_set = data.items, data.train_set

    runs = {
        "plain": [],
        "negative": ["model.architecture=srpol_negative_query",
                     f"data.negative_query_prob={args.prob}"],
    }
    models, train_seconds = {}, {}
    torch.manual_seed(settings.seed)
    plain_start = build_separator(demo_config(settings, out).model)
    for name, overrides in runs.items():
        config = apply_overrides(demo_config(settings, out / name), overrides)
        separator = build_separator(config.model)
        start_from(plain_start, separator)
        encoder = CachedTextEncoder(HashedTextEncoder(dim=config.model.condition_size))
        trainer = Trainer(config, train_set=train_set, separator=separator, encoder=encoder,
                          device="cpu", progress=False)
        print(f"training {name}: {config.model.architecture}, "
              f"{sum(p.numel() for p in trainer.model.parameters()):,} parameters, "
              f"{settings.steps} steps", flush=True)
        started = time.process_time()
        trainer.fit()
        trainer.close()
        train_seconds[name] = round(time.process_time() - started, 1)
        models[name] = (trainer.model.eval(), encoder)

    neg_model, neg_encoder = models["negative"]
    plain_model, plain_encoder = models["plain"]

    def score(model, encoder, negative: bool) -> dict[str, float]:
        table = summarize(evaluate_separator(model, items, encoder, batch_size=16,
                                             negative=negative))
        return {k: round(float(table["all"][k]), 3) for k in ("sdr", "sdri", "si_sdr")}

    scores = {
        "a_negative_model_with_negative": score(neg_model, neg_encoder, True),
        "b_negative_model_without_negative": score(neg_model, neg_encoder, False),
        "c_plain_model": score(plain_model, plain_encoder, False),
    }

    batch = min(16, len(items))
    mixture = torch.stack([it["mixture"] for it in items[:batch]])
    condition = neg_encoder([it["caption"] for it in items[:batch]])
    negative = neg_encoder([it["noise_caption"] for it in items[:batch]])
    with torch.no_grad():
        timing = {
            "plain_forward_ms": median_ms(lambda: plain_model(mixture, condition), args.repeats),
            "negative_forward_ms": median_ms(lambda: neg_model(mixture, condition, negative),
                                             args.repeats),
            "negative_forward_without_negative_ms": median_ms(
                lambda: neg_model(mixture, condition), args.repeats),
            "conditioner_ms": median_ms(lambda: query_condition(condition, negative),
                                        10 * args.repeats),
        }
    timing = {k: round(v, 3) for k, v in timing.items()}
    params = {name: sum(p.numel() for p in m.parameters()) for name, (m, _) in models.items()}
    results = {
        "scores_db": scores, "timing_batch": batch, "timing": timing, "parameters": params,
        "train_cpu_seconds": train_seconds, "mixtures": len(items), "prob": args.prob,
        "settings": {"steps": settings.steps, "batch_size": settings.batch_size,
                     "train_clips_per_kind": settings.train_clips_per_kind,
                     "heldout_clips_per_kind": settings.heldout_clips_per_kind,
                     "seed": settings.seed, "sample_rate": settings.sample_rate},
        "machine": f"{cpu_name()} ({torch.get_num_threads()} thread(s)), "
                   f"{platform.system()}, torch {torch.__version__}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", *sys.argv]),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    rows = [("(a) negative-query model, interferer's caption as negative",
             scores["a_negative_model_with_negative"]),
            ("(b) negative-query model, no negative", scores["b_negative_model_without_negative"]),
            ("(c) plain model (srpol_system1)", scores["c_plain_model"])]
    lines = ["| model and query | SDR (dB) | SDRi (dB) | SI-SDR (dB) |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {s['sdr']:.2f} | {s['sdri']:.2f} | {s['si_sdr']:.2f} |"
              for label, s in rows]
    lines += ["", f"| forward pass, batch {batch} x 1 s at 8 kHz | median ms | parameters |",
              "|---|---:|---:|",
              f"| plain model | {timing['plain_forward_ms']:.1f} | {params['plain']:,} |",
              f"| negative-query model, with negative | {timing['negative_forward_ms']:.1f} | "
              f"{params['negative']:,} |",
              f"| negative-query model, no negative | "
              f"{timing['negative_forward_without_negative_ms']:.1f} | |",
              f"| conditioner alone (`query_condition`) | {timing['conditioner_ms']:.4f} | 0 |"]
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table, encoding="utf-8")
    print(table)
    print(json.dumps({k: results[k] for k in ("machine", "date", "command",
                                              "train_cpu_seconds")}, indent=2))


if __name__ == "__main__":
    main()
