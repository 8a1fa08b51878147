"""The ``torchlass`` command line: ``demo``, ``train``, ``evaluate`` and ``separate``.

``torchlass demo --out DIR`` synthesises data, trains a small separator on the CPU and
scores it (nothing is downloaded); ``torchlass train --config NAME --set key=value``
trains a named configuration or a TOML file (under ``torchrun`` on several processes);
``torchlass evaluate`` computes the challenge's table for a checkpoint on a validation
recipe; ``torchlass separate`` extracts (or, with ``--residual``, removes) the sound a
text query describes from a WAV file of any length. Errors on bad input (missing files,
unreadable audio, a wrong sample rate, unknown configuration keys) are reported in one
line and exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from torchlass.errors import TorchlassError

if TYPE_CHECKING:
    from torchlass.recipes.config import Config

__all__ = ["build_parser", "main"]

_EPILOG_TRAIN = """examples:
  torchlass train --config srpol_system1 --set data.train_lists=lists/clotho.json \\
      --set data.audio_dir=/data/clotho --set train.out_dir=runs/system1
  torchlass train --config my_run.toml --resume runs/system1/checkpoint.pt
  torchrun --nproc_per_node=4 -m torchlass train --config baseline --set ...
  torchlass train --config mixit --print-config > mixit.toml
"""


def _demo(args: argparse.Namespace) -> int:
    import torch

    from torchlass.recipes.demo import DemoSettings, run_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    changes = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    if changes:
        settings = DemoSettings(**{**settings.__dict__, **changes})
    run_demo(args.out, settings=settings, progress=not args.no_progress)
    return 0


def _load_train_config(args: argparse.Namespace) -> Config:
    from torchlass.recipes.config import PRESETS, apply_overrides, get_config, load_config

    name = args.config
    if name.endswith(".toml") or Path(name).is_file():
        config = load_config(name)
    elif name in PRESETS:
        config = get_config(name)
    else:
        raise TorchlassError(f"--config expected a TOML file or one of {sorted(PRESETS)}, "
                             f"got {name!r}")
    return apply_overrides(config, args.set or [])


def _train(args: argparse.Namespace) -> int:
    from torchlass.recipes.config import PRESETS, config_to_toml

    if args.list_configs:
        for name, preset in PRESETS.items():
            m, t = preset.model, preset.train
            print(f"{name:20s} {m.architecture:20s} loss={t.loss:5s} "
                  f"schedule={preset.optim.schedule} lr={preset.optim.lr:g}")
        return 0
    config = _load_train_config(args)
    if args.print_config:
        print(config_to_toml(config), end="")
        return 0
    from torchlass.data import (
        CaptionedAudioDataset,
        ValidationMixtures,
        read_audiocaps_csv,
        read_clotho_csv,
        read_dcase_json,
        read_validation_recipe,
    )
    from torchlass.recipes.trainer import Trainer

    data = config.data
    if not data.train_lists:
        raise TorchlassError("train: no training data: set data.train_lists "
                             "(e.g. --set data.train_lists=lists/clotho_dev.json)")
    audio_dir = data.audio_dir or None
    if data.list_format == "dcase_json":
        items = read_dcase_json(data.train_lists, audio_dir=audio_dir)
    elif data.list_format in ("clotho_csv", "audiocaps_csv"):
        if audio_dir is None:
            raise TorchlassError(f"train: data.list_format={data.list_format!r} needs "
                                 "data.audio_dir")
        reader = read_clotho_csv if data.list_format == "clotho_csv" else read_audiocaps_csv
        items = [item for path in data.train_lists for item in reader(path, audio_dir)]
    else:
        raise TorchlassError("train: data.list_format expected 'dcase_json', 'clotho_csv' or "
                             f"'audiocaps_csv', got {data.list_format!r}")
    train_set = CaptionedAudioDataset(items, sample_rate=config.model.sample_rate,
                                      segment_seconds=data.segment_seconds,
                                      min_seconds=data.min_seconds, seed=config.train.seed)
    validation = None
    if data.validation_recipe:
        validation = ValidationMixtures(read_validation_recipe(data.validation_recipe),
                                        data.validation_audio_dir or ".",
                                        sample_rate=config.model.sample_rate)
    trainer = Trainer(config, train_set=train_set, validation_set=validation,
                      device=args.device, progress=not args.no_progress)
    if args.resume:
        trainer.resume(args.resume)
    trainer.fit()
    trainer.close()
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from torchlass.data import ValidationMixtures, read_validation_recipe
    from torchlass.recipes.evaluate import (
        evaluate_separator,
        format_table,
        summarize,
        write_item_csv,
    )
    from torchlass.recipes.inference import load_for_inference

    loaded = load_for_inference(args.checkpoint, clap_checkpoint=args.clap_checkpoint,
                                device=args.device)
    rows = read_validation_recipe(args.recipe)
    mixtures = ValidationMixtures(rows, args.audio_dir, sample_rate=loaded.sample_rate)
    scores = evaluate_separator(loaded.separator, mixtures, loaded.encoder, device=args.device,
                                batch_size=args.batch_size, progress=not args.no_progress)
    table = summarize(scores, bucket_width=args.bucket_width)
    print(format_table({Path(args.checkpoint).stem: table}))
    if args.items_csv:
        write_item_csv(args.items_csv, scores)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    return 0


def _separate(args: argparse.Namespace) -> int:
    import torch

    from torchlass.data.audio import audio_info, read_audio, resample, write_audio
    from torchlass.query import embed_captions
    from torchlass.recipes.inference import load_for_inference

    if not args.query.strip():
        raise TorchlassError("separate: --query expected a description of the sound, got ''")
    _, rate = audio_info(args.input)
    loaded = load_for_inference(args.checkpoint, clap_checkpoint=args.clap_checkpoint,
                                device=args.device)
    if rate != loaded.sample_rate and not args.resample:
        raise TorchlassError(
            f"separate: {args.input!r} is sampled at {rate} Hz but the model expects "
            f"{loaded.sample_rate} Hz; pass --resample to convert it (the output is written "
            f"at the input's rate)"
        )
    mixture = read_audio(args.input, sample_rate=loaded.sample_rate)[None].to(args.device)
    condition = embed_captions(loaded.encoder, [args.query], device=args.device)
    with torch.no_grad():
        estimate = loaded.separator.separate(mixture, condition,
                                             chunk_seconds=args.chunk_seconds,
                                             overlap_seconds=args.overlap_seconds,
                                             residual=args.residual)[0].cpu()
    if estimate.dim() == 3:  # several estimates per query (MixIT): the first is the query's
        estimate = estimate[0]
    if rate != loaded.sample_rate:
        estimate = resample(estimate, loaded.sample_rate, rate)
    write_audio(args.output, estimate, rate)
    what = "without" if args.residual else "with only"
    print(f"wrote {args.output} ({estimate.shape[-1] / rate:.2f} s, {rate} Hz): "
          f"{args.input} {what} {args.query!r}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import torch

    from torchlass.export import export_onnx, export_program, save_embeddings
    from torchlass.recipes.model import build_separator, build_text_encoder

    if bool(args.captions) != bool(args.embeddings):
        raise TorchlassError("export: --captions and --embeddings go together")
    if not (args.output or args.program or args.captions):
        raise TorchlassError("export: nothing to write: give --output, --program or "
                             "--captions with --embeddings")
    if args.checkpoint:
        from torchlass.recipes.inference import load_for_inference

        loaded = load_for_inference(args.checkpoint, clap_checkpoint=args.clap_checkpoint)
        separator, encoder = loaded.separator, loaded.encoder
    else:  # a configuration's freshly initialised model (to try the deployment path)
        config = _load_train_config(args)
        separator = build_separator(config.model).eval()
        encoder = None
    program = export_program(separator)
    if args.program:
        torch.export.save(program, args.program)
        print(f"wrote {args.program} (torch.export program)")
    if args.output:
        export_onnx(separator, args.output, program=program)
        print(f"wrote {args.output} (ONNX graph)")
    if args.captions:
        captions = [line.strip() for line in Path(args.captions).read_text(
            encoding="utf-8").splitlines() if line.strip()]
        if encoder is None:
            encoder = build_text_encoder(config.query, dim=config.model.condition_size)
        path = save_embeddings(encoder, captions, args.embeddings)
        print(f"wrote {path} ({len(captions)} query embeddings)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``torchlass`` command."""
    parser = argparse.ArgumentParser(
        prog="torchlass",
        description="Language-queried audio source separation: train, evaluate, separate.",
        epilog="Run 'torchlass COMMAND --help' for the options of a command.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="synthesise data, train a small separator on the CPU, evaluate it",
        description="Synthesise a captioned sound collection, train a small SRPOL-system-1 "
                    "separator on it (CPU, nothing downloaded), and score it against the "
                    "untrained model on held-out mixtures with the challenge protocol.")
    demo.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    demo.add_argument("--quick", action="store_true",
                      help="a few dozen steps on a small collection (checks the pipeline)")
    demo.add_argument("--steps", type=int, help="training steps (default: 800; quick: 30)")
    demo.add_argument("--seed", type=int, help="seed of data, model and mixing (default: 0)")
    demo.add_argument("--threads", type=int, default=0,
                      help="CPU threads for torch (default: torch's choice)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    train = commands.add_parser(
        "train", help="train a named configuration or a TOML file",
        description="Train a separator. Start from a named configuration or a TOML file and "
                    "override any field with --set section.field=value.",
        epilog=_EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", default="baseline",
                       help="configuration name or TOML file (default: baseline; "
                            "--list-configs shows the names)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a field, e.g. optim.lr=1e-4 or model.widths=16,32,64 "
                            "(repeatable)")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue a run exactly")
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA if available)")
    train.add_argument("--print-config", action="store_true",
                       help="print the resulting configuration as TOML and exit")
    train.add_argument("--list-configs", action="store_true",
                       help="list the named configurations and exit")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser(
        "evaluate", help="score a checkpoint on a validation recipe (SDR, SDRi, SI-SDR)",
        description="Compute the DCASE 2024 Task 9 table (mean SDR, SDRi, SI-SDR and SDRi "
                    "per SNR bucket) for a checkpoint on a lass_synthetic_validation.csv-"
                    "style recipe whose clips are AUDIO_DIR/<id>.wav.")
    evaluate.add_argument("--checkpoint", required=True,
                          help="torchlass training checkpoint or the DCASE baseline's")
    evaluate.add_argument("--recipe", required=True, help="validation recipe CSV")
    evaluate.add_argument("--audio-dir", required=True, help="folder of the recipe's clips")
    evaluate.add_argument("--items-csv", help="write per-mixture scores to this CSV")
    evaluate.add_argument("--json", help="write the table to this JSON file")
    evaluate.add_argument("--bucket-width", type=float, default=5.0,
                          help="width of the SNR buckets in dB (default: 5)")
    evaluate.add_argument("--batch-size", type=int, default=1,
                          help="clips per forward pass (default: 1)")
    evaluate.add_argument("--clap-checkpoint", help="LAION-CLAP checkpoint file")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=_evaluate)

    separate = commands.add_parser(
        "separate", help="extract (or remove) the sound a text query describes from a WAV",
        description="Separate the sound described by --query from an audio file of any "
                    "length (processed in cross-faded chunks). The output is mono.")
    separate.add_argument("--checkpoint", required=True,
                          help="torchlass training checkpoint or the DCASE baseline's")
    separate.add_argument("--input", required=True, help="audio file to separate")
    separate.add_argument("--query", required=True, help='text query, e.g. "a dog barking"')
    separate.add_argument("--output", required=True, help="WAV file to write (32-bit float)")
    separate.add_argument("--residual", action="store_true",
                          help="write the mixture minus the queried sound instead")
    separate.add_argument("--chunk-seconds", type=float, default=10.0,
                          help="length of each chunk in seconds (default: 10)")
    separate.add_argument("--overlap-seconds", type=float, default=1.0,
                          help="cross-fade between chunks in seconds (default: 1)")
    separate.add_argument("--resample", action="store_true",
                          help="accept an input at another sample rate (resampled)")
    separate.add_argument("--clap-checkpoint", help="LAION-CLAP checkpoint file")
    separate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    separate.set_defaults(func=_separate)

    export = commands.add_parser(
        "export", help="write ONNX / torch.export graphs of a separator and query embeddings",
        description="Export a separator (a checkpoint, or a configuration's untrained model) "
                    "to ONNX and/or a torch.export program with dynamic batch and time, and "
                    "save the embeddings of a caption list for the deployed graph.")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="torchlass training checkpoint or the DCASE "
                                             "baseline's")
    source.add_argument("--config", help="configuration name or TOML file (random weights)")
    export.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a field of --config (repeatable)")
    export.add_argument("--output", help="ONNX file to write")
    export.add_argument("--program", help="torch.export program (.pt2) to write")
    export.add_argument("--captions", help="text file of queries, one per line")
    export.add_argument("--embeddings", help=".npy file for the queries' embeddings")
    export.add_argument("--clap-checkpoint", help="LAION-CLAP checkpoint file")
    export.set_defaults(func=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``torchlass`` command; returns the exit status.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 on an error in the input, 2 on a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (TorchlassError, FileNotFoundError, OSError) as err:
        print(f"torchlass {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"torchlass {args.command}: interrupted", file=sys.stderr)
        return 130
