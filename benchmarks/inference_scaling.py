"""Memory and speed of ``separate_file`` on long files, against the bare forward pass.

``python benchmarks/inference_scaling.py memory --seconds 6 60`` runs each length in a fresh
process (so each peak is its own): it writes a 44.1 kHz stereo test file block by block,
builds the 16 kHz baseline with random weights, separates one query, and prints the peak
resident memory (``ru_maxrss``) before and after separating and the wall time.

``python benchmarks/inference_scaling.py throughput --layout 16k --seconds 30`` times, in
one process, ``separate_file`` on a 44.1 kHz mono file (reading, resampling both ways,
overlapping chunks, writing) and the bare forward pass on the same audio at the model's
rate, cut into chunk-sized pieces without overlap; both in seconds of audio per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from torchlass import Separator
from torchlass.data.audio import resample
from torchlass.inference import separate_file

LAYOUTS = {"16k": {"n_fft": 1024, "hop_length": 160, "sample_rate": 16000},
           "32k": {"n_fft": 2048, "hop_length": 320, "sample_rate": 32000}}
TINY = {"stem_width": 4, "widths": (4, 8, 16, 32, 48, 48)}  # smoke runs of the benchmarks


def peak_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_noise(path: Path, seconds: float, rate: int = 44100, channels: int = 2) -> None:
    """A test file written in 10 s blocks, so writing it does not raise the peak."""
    rng = np.random.default_rng(0)
    left = round(seconds * rate)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=channels, subtype="FLOAT") as f:
        while left > 0:
            n = min(left, 10 * rate)
            f.write((0.1 * rng.standard_normal((n, channels))).astype(np.float32))
            left -= n


def baseline(layout: str, tiny: bool = False) -> Separator:
    torch.manual_seed(0)
    return Separator.dcase2024_baseline(check_finite=False, **LAYOUTS[layout],
                                        **(TINY if tiny else {})).eval()


def condition(n: int = 1) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, 512, generator=torch.Generator()
                                                     .manual_seed(1)), dim=-1)


def run_one(seconds: float, *, layout: str, chunk: float, overlap: float, tiny: bool) -> dict:
    """One length in this process: peak memory before/after separating, and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        write_noise(path, seconds)
        sep = baseline(layout, tiny)
        before = peak_mb()
        start, cpu = time.perf_counter(), time.process_time()
        separate_file(sep, path, ["q"], condition=condition(), out_dir=tmp,
                      chunk_seconds=chunk, overlap_seconds=overlap)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "peak_before_mb": round(before, 1),
            "peak_mb": round(peak_mb(), 1), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "cpu_s_per_audio_s": round(cpu / seconds, 3)}


def memory(lengths: list[float], **options) -> list[dict]:
    """:func:`run_one` for each length, each in a fresh Python process."""
    rows = []
    for seconds in lengths:
        cmd = [sys.executable, __file__, "one", "--seconds", str(seconds), "--layout",
               options["layout"], "--chunk-seconds", str(options["chunk"]),
               "--overlap-seconds", str(options["overlap"]), "--threads",
               str(torch.get_num_threads())] + (["--tiny"] if options["tiny"] else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def throughput(seconds: float, *, layout: str, chunk: float, overlap: float,
               tiny: bool) -> dict:
    """``separate_file`` on a 44.1 kHz mono file vs the bare forward pass, same process."""
    sep = baseline(layout, tiny)
    rate = sep.sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        write_noise(path, seconds, channels=1)
        x = resample(torch.from_numpy(sf.read(path, dtype="float32")[0])[None], 44100, rate)
        c = condition()
        step = round(chunk * rate)
        start, cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for k in range(0, x.shape[-1], step):
                sep(x[None, :, k:k + step], c)
        bare, bare_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        separate_file(sep, path, ["q"], condition=c, out_dir=tmp, chunk_seconds=chunk,
                      overlap_seconds=overlap)
        streamed, streamed_cpu = time.perf_counter() - start, time.process_time() - cpu
    # wall time on a shared machine follows the load; CPU time (all threads) does less
    return {"layout": layout, "seconds": seconds,
            "bare_audio_s_per_wall_s": round(seconds / bare, 3),
            "separate_audio_s_per_wall_s": round(seconds / streamed, 3),
            "ratio_wall": round(bare / streamed, 3),
            "bare_audio_s_per_cpu_s": round(seconds / bare_cpu, 3),
            "separate_audio_s_per_cpu_s": round(seconds / streamed_cpu, 3),
            "ratio_cpu": round(bare_cpu / streamed_cpu, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["memory", "throughput", "one"])
    parser.add_argument("--seconds", type=float, nargs="+", default=[6.0, 60.0])
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="16k")
    parser.add_argument("--chunk-seconds", type=float, default=10.0)
    parser.add_argument("--overlap-seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="small widths (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = {"layout": args.layout, "chunk": args.chunk_seconds,
               "overlap": args.overlap_seconds, "tiny": args.tiny}
    if args.mode == "one":
        print(json.dumps(run_one(args.seconds[0], **options)))
    elif args.mode == "memory":
        for row in memory(args.seconds, **options):
            print(json.dumps(row), flush=True)
    else:
        for seconds in args.seconds:
            print(json.dumps(throughput(seconds, **options)), flush=True)


if __name__ == "__main__":
    main()
