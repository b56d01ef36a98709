"""GroundVTS-tiny, the embedded default model (`hub_configs/groundvts-tiny`), rebuilt from a synthetic-benchmark run.

`bundle(run_dir, out_dir)` builds a release folder (`release.repo.build_release`, no upload) from the run's `token`
model at the benchmark's video settings, rewrites its card for the toy (with the run's results table) and adds a
few held-out example videos for `groundvts ground --demo N`. Run it with
`python -m groundvts.scripts.cli.bundle_tiny_model RUN_DIR`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from groundvts.scripts.data.synthetic.benchmark import BASE_FPS, results_table
from groundvts.scripts.release.repo import ReleaseSettings, VideoOverrides, build_release

REPO_ID = "groundvts/groundvts-tiny"
EXAMPLES_SEED = 20261122  # not a seed any benchmark run trains on (they use --seed, default 0)


def card_preamble(report: dict[str, Any], variant: str, num_params: int) -> str:
    scenes = report["settings"]["generator"]
    return (
        "> **GroundVTS-tiny is a toy.** It is the embedded default model of the `groundvts` package: a "
        f"{num_params / 1e6:.1f} M-parameter Qwen2.5-VL-architecture GroundVTS model trained from scratch on the "
        "synthetic shapes benchmark (`groundvts synthetic-benchmark`), not a fine-tune of Qwen2.5-VL-7B. It only "
        f"knows {scenes['width']}x{scenes['height']}-px videos of one coloured shape that appears or disappears. "
        "Real checkpoints are named with `--model`.\n\n"
        f"It is the run's `{variant}` variant. Results of that run on its 200 held-out synthetic test videos "
        "(Charades-STA format and metrics; `mean_window` is the trivial baseline):\n\n"
        f"{results_table(report)}\n"
    )


def write_card(path: Path, preamble: str) -> None:
    """The release card with the toy's metadata (no base model, no real datasets) and `preamble` in place of the
    paragraph that describes the real-size GroundVTS-Q."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(path)
    card.data.base_model = None
    card.data.datasets = None
    title, _, rest = card.text.lstrip("\n").partition("\n\n")
    backbone_paragraph, _, rest = rest.partition("\n\n")
    if not backbone_paragraph.startswith("**GroundVTS-"):
        raise ValueError(f"unexpected release card layout in {path}: {backbone_paragraph[:80]!r}")
    card.text = f"{title}\n\n{preamble}\n{rest}"
    card.save(path)


def write_examples(out_dir: Path, report: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`count` held-out videos of the run's scene settings at `EXAMPLES_SEED`, with examples.json."""
    from groundvts.scripts.data.synthetic.videos import make_synthetic_benchmark, read_split

    examples_dir = out_dir / "examples"
    examples_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        make_synthetic_benchmark(scratch, seed=EXAMPLES_SEED, num_train=0, num_val=0, num_test=count,
                                 **report["settings"]["generator"])
        rows = []
        for sample in read_split(scratch, "test")[0]:
            name = Path(sample["video"]).name
            shutil.copy(sample["video"], examples_dir / name)
            rows.append({"video": name, "query": sample["query"], "start": sample["window"][0],
                         "end": sample["window"][1]})
    (examples_dir / "examples.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def bundle(run_dir: Path, out_dir: Path, variant: str = "token", num_examples: int = 4) -> Path:
    """Build GroundVTS-tiny in `out_dir` (replaced) from `run_dir`'s `variant` model; returns `out_dir`.

    Raises FileNotFoundError when the run has no such model, and the release builder's ValueErrors.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    report = json.loads((run_dir / "results.json").read_text())
    model_dir = run_dir / variant
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} has no model; run `groundvts synthetic-benchmark` with --variants {variant}."
        )
    side = report["settings"]["frame_side"]
    build_release(
        ReleaseSettings(
            model_dir, repo_id=REPO_ID, out_dir=out_dir, overwrite=True, max_new_tokens=16, dtype="float32"
        ),
        video=VideoOverrides(fps=BASE_FPS, max_frames=128, max_pixels=side * side),
    )
    from safetensors.torch import load_file

    num_params = sum(tensor.numel() for tensor in load_file(out_dir / "model.safetensors").values())
    write_card(out_dir / "README.md", card_preamble(report, variant, num_params))
    write_examples(out_dir, report, num_examples)
    return out_dir
