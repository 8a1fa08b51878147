"""The Python blocks of the foundation's documentation pages run, in order, as written."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def run_page(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"{page} has no Python example"
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page}[python block {i}]", "exec"), namespace)


def test_conventions_examples_run():
    run_page("conventions.md")


def test_custom_separator_guide_runs_and_prints_what_it_claims(capsys):
    run_page("guides/custom_separator.md")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "torch.Size([4, 1, 1, 8000])" and out[-1] == "torch.Size([4, 1, 1, 8000])"
    assert out[1].startswith("L1 after 20 steps: ")
