"""The ``torchlass`` command line: ``demo``, ``train``, ``evaluate``, ``separate`` and ``export``.

``torchlass demo --out DIR`` synthesises data, trains a small separator on the CPU and
scores it (nothing is downloaded); ``torchlass train --config NAME --set key=value``
trains a named configuration or a TOML file (under ``torchrun`` on several processes);
``torchlass evaluate`` computes the challenge's table for a checkpoint on a validation
recipe, or scores real recordings, which have no references, with CLAPScore
(``--mixtures DIR --captions FILE``); ``torchlass separate`` extracts (or, with
``--residual``, removes) the sound a query describes from sound files of any rate, channel
count and length: a caption (``--query``), an example clip (``--query-audio``), each with an
optional negative query (``--negative``, what to leave out); ``torchlass export`` writes
ONNX graphs and ``torch.export`` programs. ``torchlass --version`` prints the version.

Errors on bad input (missing files, unreadable audio, a checkpoint that is unreadable,
empty or of another kind, an unknown or absent ``--device``, an output that cannot be
written or would overwrite the input, unknown configuration keys) are reported on stderr
in one line, ``torchlass COMMAND: ErrorType: message``, and exit with status 1; outputs and
devices are checked before any work is done. ``evaluate`` and ``separate`` share one
sample-rate rule: audio at another rate than the model's is resampled to it with
``scipy.signal.resample_poly`` (``separate`` writes its outputs back at the input's rate).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from torchlass import __version__
from torchlass.errors import TorchlassError

if TYPE_CHECKING:
    from torchlass.query import AudioQuery, Query
    from torchlass.recipes.config import Config

__all__ = ["build_parser", "main"]

_AUDIO_OUT = (".wav",)  # write_audio writes 32-bit float WAV

_EPILOG_TRAIN = """examples:
  torchlass train --config srpol_system1 --set data.train_lists=lists/clotho.json \\
      --set data.audio_dir=/data/clotho --set train.out_dir=runs/system1
  torchlass train --config my_run.toml --resume runs/system1/checkpoint.pt
  torchrun --nproc_per_node=4 -m torchlass train --config baseline --set ...
  torchlass train --config mixit --print-config > mixit.toml
"""

_EPILOG_EVALUATE = """examples:
  torchlass evaluate --checkpoint runs/system1/checkpoint.pt \\
      --recipe lass_synthetic_validation.csv --audio-dir lass_validation/
  torchlass evaluate --checkpoint dcase2024_baseline.ckpt --tokenizer roberta-base/ \\
      --mixtures lass_evaluation_real/ --captions queries.csv --items-csv items.csv
"""

_EPILOG_SEPARATE = """examples:
  torchlass separate --checkpoint dcase2024_baseline.ckpt --tokenizer roberta-base/ \\
      --query "a dog barking" --query "speech" --input recordings/ --residual --out-dir out
  torchlass separate --checkpoint runs/system1/checkpoint.pt --input street.flac \\
      --query "a car horn" --output horn.wav
  torchlass separate --checkpoint negative.pt --input living_room/ \\
      --query "speech" --negative "a television" --out-dir out
  torchlass separate --checkpoint clap_with_audio.ckpt --tokenizer roberta-base/ \\
      --query-audio examples/bark.wav --query "rain" --input street.flac --out-dir out
"""


def _demo(args: argparse.Namespace) -> int:
    import torch

    from torchlass.recipes.demo import DemoSettings, run_demo

    if (args.clap_checkpoint is None) != (args.tokenizer is None):
        raise TorchlassError("--clap-checkpoint and --tokenizer go together: CLAP's towers "
                             "are built from the checkpoint with the RoBERTa tokenizer folder")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    changes = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    if changes:
        settings = DemoSettings(**{**settings.__dict__, **changes})
    clap = None
    if args.clap_checkpoint is not None:  # loaded first: a bad file fails before training
        from torchlass.query import CachedTextEncoder, embeds_audio, load_clap_encoder

        # cached: both evaluations (untrained, trained) score the same captions
        clap = CachedTextEncoder(load_clap_encoder(args.clap_checkpoint, tokenizer=args.tokenizer))
        if not embeds_audio(clap):
            raise TorchlassError(f"--clap-checkpoint: {args.clap_checkpoint!r} holds no CLAP "
                                 "audio tower, which CLAPScore needs")
    run_demo(args.out, settings=settings, progress=not args.no_progress, clap=clap,
             clap_convention=args.clap_convention)
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
    from torchlass.recipes.datasets import build_train_set, build_validation_set
    from torchlass.recipes.inference import resolve_device
    from torchlass.recipes.trainer import Trainer, load_checkpoint

    device = resolve_device(args.device, fn="", name="--device") if args.device else None
    state = load_checkpoint(args.resume) if args.resume else None  # fail before any work
    trainer = Trainer(config, train_set=build_train_set(config),
                      validation_set=build_validation_set(config), device=device,
                      progress=not args.no_progress)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit()
    trainer.close()
    return 0


def _check_output(path: str | None, option: str, *, suffixes: tuple[str, ...] = (),
                  input_path: str | None = None) -> None:
    """Refuse an output that cannot be written, before any work is done."""
    if path is None:
        return
    file = Path(path)
    if suffixes and file.suffix.lower() not in suffixes:
        raise TorchlassError(f"{option} expected a file ending in {' or '.join(suffixes)}, "
                             f"got {path!r}")
    if input_path is not None and file.resolve() == Path(input_path).resolve():
        raise TorchlassError(f"{option} is the input file {input_path!r}: choose another path "
                             "(the input would be overwritten)")
    if file.is_dir():
        raise TorchlassError(f"{option} expected a file, got the folder {path!r}")
    folder = file.parent
    while not folder.exists():  # the writer creates missing folders under an existing one
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise TorchlassError(f"{option} cannot be written: {str(folder)!r} is not a writable "
                             "folder")
    if file.exists() and not os.access(file, os.W_OK):
        raise TorchlassError(f"{option} cannot be written: {path!r} is read-only")


def _note_resampling(command: str, files: Sequence[Path], model_rate: int) -> None:
    """The sample-rate rule of ``evaluate`` and ``separate``: other rates are resampled."""
    from torchlass.data.audio import audio_info

    other = [file for file in files if audio_info(file)[1] != model_rate]
    if other:
        print(f"torchlass {command}: resampling {len(other)} file(s) to the model's "
              f"{model_rate} Hz (scipy.signal.resample_poly)", file=sys.stderr)


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from torchlass.data import (
        RecordedMixtures,
        ValidationMixtures,
        read_mixture_captions,
        read_validation_recipe,
    )
    from torchlass.inference import load_separator
    from torchlass.inference.files import model_sample_rate
    from torchlass.query import embeds_audio
    from torchlass.recipes.evaluate import (
        evaluate_separator,
        format_table,
        summarize,
        write_item_csv,
    )
    from torchlass.recipes.inference import resolve_device

    real = args.mixtures is not None or args.captions is not None
    if real and (args.recipe is not None or args.audio_dir is not None):
        raise TorchlassError("--mixtures/--captions (real recordings) and --recipe/--audio-dir "
                             "(synthetic mixtures) are two evaluations: give one pair")
    if (args.judge is None) != (args.judge_tokenizer is None):
        raise TorchlassError("--judge and --judge-tokenizer go together: the CLAP judge is "
                             "built from the checkpoint with its RoBERTa tokenizer folder")
    if real and (args.mixtures is None or args.captions is None):
        raise TorchlassError("--mixtures and --captions go together: the folder of recordings "
                             "and the list of their queries")
    if not real and (args.recipe is None or args.audio_dir is None):
        raise TorchlassError("give --recipe and --audio-dir (synthetic mixtures with references)"
                             " or --mixtures and --captions (real recordings, scored by "
                             "CLAPScore)")
    _check_output(args.items_csv, "--items-csv")
    _check_output(args.json, "--json")
    device = resolve_device(args.device, fn="", name="--device")
    if real:  # the lists are read before the model: their errors come first
        queries = read_mixture_captions(args.captions, args.mixtures)
        clips = sorted({q.path for q in queries})
    else:
        rows = read_validation_recipe(args.recipe)
        # the clips ValidationMixtures reads: <audio_dir>/<id>.wav
        clips = sorted({Path(args.audio_dir) / f"{i}.wav" for r in rows
                        for i in (r.source, r.noise)})
    judge = None
    if args.judge is not None:  # loaded first: a bad judge fails before the separator
        from torchlass.query import CachedTextEncoder, load_clap_encoder

        # cached: each caption is scored against the estimate and the mixture
        judge = CachedTextEncoder(load_clap_encoder(args.judge, tokenizer=args.judge_tokenizer))
    separator, encoder = load_separator(args.checkpoint, tokenizer=args.tokenizer,
                                        clap_checkpoint=args.clap_checkpoint, device=device)
    rate = model_sample_rate(separator)
    clap = judge if judge is not None else encoder if embeds_audio(encoder) else None
    if real and clap is None:
        raise TorchlassError(
            f"--mixtures: recordings without references are scored by CLAPScore, which needs "
            f"CLAP's audio tower, and the encoder loaded with {str(args.checkpoint)!r} "
            f"({type(getattr(encoder, 'encoder', encoder)).__name__}) has none: give a "
            "checkpoint holding CLAP's towers with --tokenizer, or a CLAP judge with --judge "
            "and --judge-tokenizer")
    items = (RecordedMixtures(queries, sample_rate=rate) if real
             else ValidationMixtures(rows, args.audio_dir, sample_rate=rate))
    _note_resampling("evaluate", clips, rate)
    scores = evaluate_separator(separator, items, encoder, device=device,
                                batch_size=args.batch_size, progress=not args.no_progress,
                                clap=clap, sample_rate=rate,
                                clap_convention=args.clap_convention)
    table = summarize(scores, bucket_width=args.bucket_width)
    print(format_table({Path(args.checkpoint).stem: table}))
    if clap is None:
        print("CLAPScore: not computed (the text encoder has no CLAP audio tower; give a "
              "CLAP judge with --judge and --judge-tokenizer)")
    if args.items_csv:
        write_item_csv(args.items_csv, scores)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    return 0


class _AppendQuery(argparse.Action):
    """Collect ``--query`` and ``--query-audio`` in one list, in command-line order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        queries = list(getattr(namespace, self.dest) or [])
        setattr(namespace, self.dest, [*queries, (option_string, values)])


def _read_query_clip(path: str) -> AudioQuery:
    """An ``--query-audio`` file at its own rate and channels (the encoder resamples)."""
    from torchlass.data.audio import audio_info, read_audio
    from torchlass.query import AudioQuery

    rate = audio_info(path)[1]
    waveform = read_audio(path, sample_rate=rate, mono=False)
    if waveform.shape[-1] == 0:
        raise TorchlassError(f"--query-audio expected a clip with samples, got the empty file "
                             f"{path!r}")
    return AudioQuery(waveform, rate, Path(path).stem)


def _separate_negatives(args: argparse.Namespace) -> list[str | None] | None:
    """Check the queries; one negative (or None) per query, or None without --negative."""
    given = args.queries or []
    if not given:
        raise TorchlassError("expected at least one --query or --query-audio, got none")
    for option, value in given:
        if option == "--query" and not value.strip():
            raise TorchlassError("--query expected a description of the sound, got ''")
    negatives = args.negative
    if negatives is not None:
        if len(negatives) not in (1, len(given)):
            raise TorchlassError(f"--negative expected one value for all queries or one per "
                                 f"query ({len(given)}), got {len(negatives)}")
        # an empty --negative: no negative query for that query
        negatives = [n if n.strip() else None for n in negatives] * (
            len(given) if len(negatives) == 1 else 1)
    return negatives


def _separate(args: argparse.Namespace) -> int:
    from torchlass.inference import (
        expand_inputs,
        load_separator,
        separate_file,
        separate_files,
        takes_negative,
    )
    from torchlass.query import embeds_audio
    from torchlass.recipes.inference import resolve_device

    negatives = _separate_negatives(args)
    if args.output:
        files = expand_inputs(args.input)
        if len(files) != 1 or len(args.queries) != 1:
            raise TorchlassError("--output names one file: give one --input file and one "
                                 "--query or --query-audio, or use --out-dir")
    options = {"negatives": negatives, "residual": args.residual,
               "chunk_seconds": args.chunk_seconds, "overlap_seconds": args.overlap_seconds,
               "batch_size": args.batch_size, "device": args.device, "dtype": args.dtype}
    if args.output:
        output = Path(args.output)
        names = [output.name, f"{output.stem}_residual.wav"]
        _check_output(args.output, "--output", suffixes=_AUDIO_OUT, input_path=str(files[0]))
        if args.residual:  # written next to the target
            _check_output(str(output.parent / names[1]), "--output", input_path=str(files[0]))
    queries: list[Query] = [value if option == "--query" else _read_query_clip(value)
                            for option, value in args.queries]
    resolve_device(args.device, fn="", name="--device")
    separator, encoder = load_separator(args.checkpoint, tokenizer=args.tokenizer,
                                        clap_checkpoint=args.clap_checkpoint,
                                        device=args.device)
    if any(option == "--query-audio" for option, _ in args.queries) and not embeds_audio(
            encoder):
        raise TorchlassError(
            f"--query-audio needs CLAP's audio tower, but {args.checkpoint!r}"
            + (" with --tokenizer" if args.tokenizer else "")
            + (" and --clap-checkpoint" if args.clap_checkpoint else "")
            + f" gives a text-only encoder ({type(encoder).__name__}): pass --tokenizer DIR "
            "with a checkpoint (or --clap-checkpoint) that holds CLAP's audio tower")
    if negatives is not None and any(negatives) and not takes_negative(separator):
        raise TorchlassError(f"--negative needs a separator trained with negative queries; "
                             f"{args.checkpoint!r} gives one that takes none "
                             f"({type(separator).__name__}, takes_negative is not true)")
    if args.output:
        done = separate_file(separator, files[0], queries, encoder, names=names,
                             out_dir=output.parent, **options)
        for path in done.targets + done.residuals:
            print(f"wrote {path} ({done.seconds:.2f} s, {done.sample_rate} Hz, "
                  f"{done.channels} channel(s))")
        return 0
    summary = separate_files(separator, args.input, queries, encoder, out_dir=args.out_dir,
                             progress=not args.no_progress, **options)
    for path, reason in summary.failed:
        print(f"torchlass separate: error: {path}: {reason}", file=sys.stderr)
    total = len(summary.done) + len(summary.failed)
    print(f"separated {len(summary.done)} of {total} file(s) into {args.out_dir}"
          + (f"; {len(summary.failed)} failed" if summary.failed else ""))
    return 1 if summary.failed else 0


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
        from torchlass.inference import load_separator

        separator, encoder = load_separator(args.checkpoint,
                                            clap_checkpoint=args.clap_checkpoint)
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
    parser.add_argument("--version", action="version", version=f"torchlass {__version__}")
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
    demo.add_argument("--clap-checkpoint", metavar="FILE",
                      help="a checkpoint holding CLAP's audio and text towers (LAION-CLAP, "
                           "AudioSep or DCASE): also report CLAPScore, with CLAP as the judge")
    demo.add_argument("--tokenizer", metavar="DIR",
                      help="RoBERTa tokenizer folder for --clap-checkpoint")
    demo.add_argument("--clap-convention", default="cos", choices=["cos", "hessel", "percent"],
                      help="CLAPScore as cos (default), 2.5*max(cos,0) or 100*max(cos,0)")
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
        "evaluate", help="score a checkpoint: SDR family on a recipe, CLAPScore on recordings",
        description="Compute the DCASE 2024 Task 9 table (mean SDR, SDRi, SI-SDR and SDRi "
                    "per SNR bucket) for a checkpoint on a lass_synthetic_validation.csv-"
                    "style recipe whose clips are AUDIO_DIR/<id>.wav; or score real "
                    "recordings, which have no references, with CLAPScore (Xiao et al., "
                    "DCASE 2024 Workshop) of the estimate, of the mixture and their "
                    "difference. CLAPScore needs CLAP's audio tower (a checkpoint holding "
                    "CLAP's towers with --tokenizer); with it, the recipe's table gets the "
                    "CLAPScore rows too.",
        epilog=_EPILOG_EVALUATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("--checkpoint", required=True,
                          help="torchlass training checkpoint or the DCASE baseline's")
    evaluate.add_argument("--recipe", help="validation recipe CSV (synthetic mixtures)")
    evaluate.add_argument("--audio-dir", help="folder of the recipe's clips")
    evaluate.add_argument("--mixtures", metavar="DIR",
                          help="folder of real recordings (any rate, channels averaged)")
    evaluate.add_argument("--captions", metavar="FILE",
                          help="their queries: CSV 'file,caption' or DCASE JSON "
                               "{\"data\": [{\"wav\", \"caption\"}]}")
    evaluate.add_argument("--tokenizer", metavar="DIR",
                          help="RoBERTa tokenizer folder: CLAP is built from the checkpoint's "
                               "own weights (or --clap-checkpoint's)")
    evaluate.add_argument("--judge", metavar="FILE",
                          help="CLAP checkpoint (both towers: the DCASE baseline's, AudioSep's "
                               "or a LAION-CLAP .pt) that scores CLAPScore, for a separator "
                               "whose own encoder has no audio tower; with --judge-tokenizer")
    evaluate.add_argument("--judge-tokenizer", metavar="DIR",
                          help="RoBERTa tokenizer folder of --judge")
    evaluate.add_argument("--clap-convention", default="cos",
                          choices=["cos", "hessel", "percent"],
                          help="CLAPScore as cos (default, Xiao et al. 2024), 2.5*max(cos,0) "
                               "(hessel, CLIPScore) or 100*max(cos,0) (percent, torchmetrics)")
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
        "separate", help="extract the sounds text queries describe from audio files",
        description="Separate the sound each --query describes from audio files of any "
                    "rate, channel count and length (WAV, FLAC, OGG; streamed in "
                    "cross-faded chunks, resampled to the model's rate and back). One "
                    "float WAV per input and query, at the input's rate and channels.",
        epilog=_EPILOG_SEPARATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    separate.add_argument("--checkpoint", required=True,
                          help="torchlass training checkpoint, or an AudioSep/DCASE one")
    separate.add_argument("--input", required=True, nargs="+", metavar="PATH",
                          help="audio files, folders or glob patterns")
    separate.add_argument("--query", action=_AppendQuery, dest="queries",
                          help='text query, e.g. "a dog barking" (repeatable)')
    separate.add_argument("--query-audio", action=_AppendQuery, dest="queries", metavar="FILE",
                          help="an example clip as the query, \"more of this sound\" "
                               "(repeatable, mixes with --query in the order given; needs "
                               "CLAP's audio tower)")
    separate.add_argument("--negative", action="append", metavar="TEXT",
                          help="what not to keep, e.g. \"a television\": once for all "
                               "queries or once per query in order (\"\" for none); needs a "
                               "separator trained with negative queries")
    separate.add_argument("--out-dir", default=".",
                          help="folder of the outputs, named INPUT_QUERY[_residual].wav, "
                               "INPUT_audio_CLIP[_residual].wav for --query-audio "
                               "(default: .)")
    separate.add_argument("--output", help="one output file instead (one input, one query)")
    separate.add_argument("--residual", action="store_true",
                          help="also write the mixture minus each queried sound")
    separate.add_argument("--chunk-seconds", type=float, default=10.0,
                          help="length of each chunk in seconds (default: 10)")
    separate.add_argument("--overlap-seconds", type=float, default=1.0,
                          help="cross-fade between chunks in seconds (default: 1)")
    separate.add_argument("--batch-size", type=int, default=8,
                          help="channels x queries per forward pass (default: 8)")
    separate.add_argument("--tokenizer", metavar="DIR",
                          help="RoBERTa tokenizer folder (vocab.json, merges.txt): CLAP's text "
                               "tower is built from the checkpoint's own weights")
    separate.add_argument("--clap-checkpoint", help="LAION-CLAP checkpoint file")
    separate.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    separate.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                          help="network arithmetic (default: float32)")
    separate.add_argument("--resample", action="store_true",
                          help=argparse.SUPPRESS)  # kept for old scripts: always resampled
    separate.add_argument("--no-progress", action="store_true", help="no progress bar")
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
        0 on success, 1 on an error in the input (reported on stderr in one line,
        ``torchlass COMMAND: ErrorType: message``), 2 on a usage error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except (TorchlassError, OSError) as err:
        # one line even if a message quotes a multi-line error from a library below
        message = " ".join(str(err).split())
        print(f"torchlass {args.command}: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"torchlass {args.command}: interrupted", file=sys.stderr)
        return 130
