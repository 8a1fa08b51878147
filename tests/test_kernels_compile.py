"""The fused kernels compile for an NVIDIA GPU (sm_90), checked on a machine without one.

The interpreter tests (``test_kernels.py``) check the kernels' arithmetic; this module
checks what only the compiler sees: Triton's front-end (constexpr branches, shapes of
``split``/``join``/``trans``, dtype casts) and PTX assembly by the ``ptxas`` that ships with
Triton. It runs in a subprocess because the interpreter flag of the other tests is read
when the kernels are decorated. Skipped when Triton has no NVIDIA backend.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="triton is not installed (optional dependency)")

ROOT = Path(__file__).resolve().parents[1]


KERNELS = ["_features_backward_kernel", "_features_forward_kernel", "_gram_kernel",
           "_mask_backward_kernel", "_mask_forward_kernel", "_moments_backward_kernel",
           "_moments_kernel", "_ola_backward_kernel", "_ola_forward_kernel"]


def _compile_all() -> list[str]:
    """Compile representative specialisations of every kernel; return the kernels' names."""
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from torchlass.kernels import features, masks, overlap_add, reductions

    target = GPUTarget("cuda", 90, 32)
    compiled = []

    def build(kernel, constexprs, pointers=None, default="*fp32"):
        pointers = pointers or {}
        signature = {
            name: "constexpr" if name in constexprs
            else pointers.get(name, default) if name.endswith("_ptr")
            else ("i32",) * 5 if name.endswith("_st")  # an operand's five strides
            else "i32"
            for name in kernel.arg_names
        }
        triton.compile(ASTSource(kernel, signature, constexprs), target=target)
        compiled.append(kernel.__name__)

    tiles = {"BP": 32, "BQ": 32, "WIDE": False, "CD": tl.float32}
    flat = {"BP": 1, "BQ": 1024, "WIDE": True, "CD": tl.float64}
    half_planes = {"z0_ptr": "*bf16", "z1_ptr": "*bf16", "z2_ptr": "*fp16"}
    fwd_fast = {"X_FAST": True, "A_FAST": False, "B_FAST": False, "C_FAST": False,
                "Y_FAST": True}
    bwd_fast = {**fwd_fast, "G_FAST": False, "DX_FAST": True, "D0_FAST": False,
                "D1_FAST": True, "D2_FAST": False}
    del bwd_fast["Y_FAST"]
    for mode, layout in ((2, tiles), (0, flat), (1, tiles)):
        build(masks._mask_forward_kernel, {**fwd_fast, **layout, "MODE": mode}, half_planes)
        needs = {"NEED_DX": True, "NEED_D0": True, "NEED_D1": mode != 0, "NEED_D2": mode == 2}
        build(masks._mask_backward_kernel, {**bwd_fast, **layout, **needs, "MODE": mode},
              {"d0_ptr": "*bf16"})
    feature_fast = {"X_FAST": True, "M_FAST": False, "C_FAST": False, "S_FAST": False}
    build(features._features_forward_kernel, {**feature_fast, **tiles, "eps": 1e-10},
          {"m_ptr": "*fp16"})
    build(features._features_backward_kernel,
          {**feature_fast, **tiles, "eps": 1e-10, "DX_FAST": True, "HAS_GM": True,
           "HAS_GC": True, "HAS_GS": False})
    for kernel in (overlap_add._ola_forward_kernel, overlap_add._ola_backward_kernel):
        build(kernel, {"CD": tl.float32, "BLOCK": 1024})
    build(reductions._moments_kernel,
          {"CHUNK": 16384, "BLOCK": 1024, "LOG2_BLOCK": 10, "TREE": False},
          {"x_ptr": "*bf16", "out_ptr": "*fp64"})
    build(reductions._moments_backward_kernel, {"NEED_DX": True, "NEED_DS": True,
                                                "BLOCK": 1024}, {"g_ptr": "*fp64"})
    build(reductions._gram_kernel, {"R": 16, "CHUNK": 4096, "BLOCK": 64}, {"m_ptr": "*bf16"})
    return sorted(set(compiled))


@pytest.mark.slow
def test_kernels_compile_for_sm90():
    if importlib.util.find_spec("triton.backends.nvidia") is None:
        pytest.skip("triton has no NVIDIA backend")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    result = subprocess.run([sys.executable, __file__], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.split() == KERNELS  # every kernel of torchlass.kernels compiled


if __name__ == "__main__":
    print(" ".join(_compile_all()))
