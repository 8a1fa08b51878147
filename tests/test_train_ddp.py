"""DDP with gloo: two processes end with the parameters of one process on the global batch."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from helpers import run_two_gloo_processes
from train_setup import ddp_setup, params

ROOT = Path(__file__).resolve().parents[1]


WORKER = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    from train_setup import ddp_setup
    trainer = ddp_setup({out!r}, batch_size=2)
    trainer.fit()
    if trainer.dist.rank == 0:
        torch.save(trainer.model.state_dict(), {out!r} + "/ddp.pt")
""")


@pytest.mark.slow
def test_ddp_gloo_two_processes_equal_one_process_on_the_global_batch(tmp_path):
    run_two_gloo_processes(WORKER.format(tests=str(ROOT / "tests"), out=str(tmp_path)),
                           tmp_path)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = ddp_setup(str(tmp_path), batch_size=4)
    assert single.dist.world_size == 1
    start = params(single.model)
    single.fit()
    changed = False
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp[key], value, rtol=1e-5, atol=1e-6)
        changed |= not torch.equal(start[key], value)
    assert changed
