"""Rebuild the embedded default model, GroundVTS-tiny (`hub_configs/groundvts-tiny`), from a synthetic-benchmark run.

    groundvts synthetic-benchmark --out runs/synthetic
    python -m groundvts.scripts.data.synthetic.bundle runs/synthetic            # writes hub_configs/groundvts-tiny

1. `groundvts release --dry-run` assembles a Hub model folder from the run's `token` model (GroundVTS ρ = 0.5):
   safetensors weights, the flat remote code, the processor at the benchmark's video settings, a greedy
   generation config and a model card;
2. the card says what the model is (a from-scratch toy, not Qwen2.5-VL-7B) and gets the run's results table;
3. a few held-out synthetic videos (a generator seed the run never trained on) go to `examples/`, listed in
   `examples/examples.json`, for `groundvts ground --demo N`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from groundvts.hub_configs import TINY_MODEL_DIR

from groundvts.scripts.release import repo as release
from groundvts.scripts.data.synthetic.benchmark import BASE_FPS, results_table

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
        raise RuntimeError(f"unexpected release card layout in {path}: {backbone_paragraph[:80]!r}")
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
    report = json.loads((run_dir / "results.json").read_text())
    model_dir = run_dir / variant
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} has no model; run `groundvts synthetic-benchmark` with --variants {variant}.")
    side = report["settings"]["frame_side"]
    code = release.main([str(model_dir), "--repo-id", REPO_ID, "--out-dir", str(out_dir), "--dry-run", "--overwrite",
                         "--fps", str(BASE_FPS), "--max-frames", "128", "--max-pixels", str(side * side),
                         "--max-new-tokens", "16", "--dtype", "float32"])
    if code != 0:
        raise RuntimeError(f"groundvts release failed for {model_dir} (exit {code})")
    from safetensors.torch import load_file

    num_params = sum(tensor.numel() for tensor in load_file(out_dir / "model.safetensors").values())
    write_card(out_dir / "README.md", card_preamble(report, variant, num_params))
    write_examples(out_dir, report, num_examples)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m groundvts.scripts.data.synthetic.bundle", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="a `groundvts synthetic-benchmark --out` folder")
    parser.add_argument("--variant", default="token", help="the run's model to bundle (default: token)")
    parser.add_argument("--out-dir", type=Path, default=TINY_MODEL_DIR, help=f"default: {TINY_MODEL_DIR}")
    parser.add_argument("--examples", type=int, default=4, help="held-out example videos to bundle (default 4)")
    args = parser.parse_args(argv)
    try:
        out = bundle(args.run_dir, args.out_dir, args.variant, args.examples)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"bundled {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
