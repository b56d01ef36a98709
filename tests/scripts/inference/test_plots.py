"""scripts/inference/plots.py: the numbers behind the kept-token density and the figures (headless)."""

import matplotlib
import matplotlib.image
import pytest
import torch

from groundvts.scripts.inference.grounding import GroundingResult, ground
from groundvts.scripts.inference.loading import load_groundvts
from groundvts.scripts.inference.plots import kept_density, plot_grounding, spatial_units
from inference_test_utils import tiny_model_folder, tiny_videos


def _result(keep, scores=None, video="missing.mp4"):
    units = keep.shape[0]
    times = torch.stack([torch.arange(units) * 2.0, torch.arange(units) * 2.0 + 2.0], 1).double()
    return GroundingResult(
        text="", span=(2.0, 5.0), prediction=None, task="mr", duration=2.0 * units, keep=keep.flatten(),
        scores=None if scores is None else scores.flatten(), token_times=times.repeat_interleave(keep[0].numel(), 0),
        grid=tuple(keep.shape), unit_times=times, unit_frame_indices=list(range(units)), video=video,
        keep_ratio=0.5, strategy="token",
    )


def test_kept_density_is_the_kept_share_and_mean_score_per_unit():
    keep = torch.tensor([[[1, 1], [1, 1]], [[0, 1], [0, 0]], [[0, 0], [0, 0]]], dtype=torch.bool)
    scores = torch.arange(12, dtype=torch.float).view(3, 2, 2)
    density = kept_density(_result(keep, scores))
    assert [d[2] for d in density] == [1.0, 0.25, 0.0]
    assert [d[3] for d in density] == [1.5, 5.5, 9.5]
    assert [(d[0], d[1]) for d in density] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert all(d[3] is None for d in kept_density(_result(keep)))


def test_spatial_units_spread_over_the_video():
    keep = torch.ones(10, 1, 2, dtype=torch.bool)
    assert spatial_units(_result(keep), 3) == [0, 4, 9]  # round(4.5) -> 4 (banker's rounding)
    assert spatial_units(_result(keep), 50) == list(range(10))
    assert spatial_units(_result(keep), 0) == []


def test_figures_are_written_without_a_display(tmp_path):
    assert matplotlib.get_backend().lower() == "agg"
    keep = torch.rand(6, 2, 2) > 0.5
    simple = plot_grounding(_result(keep, torch.rand(6, 2, 2)), tmp_path / "density.png", truth=(1.0, 3.0))
    # No readable video: the spatial maps fall back to plain keep grids.
    spatial = plot_grounding(_result(keep), tmp_path / "sub" / "spatial.png", spatial_frames=3, query="q " * 60)
    small, large = matplotlib.image.imread(simple), matplotlib.image.imread(spatial)
    assert large.shape[0] > small.shape[0]  # the retention maps add a row


@pytest.mark.parametrize("frames", [0, 4])
def test_plot_from_a_real_grounding(tmp_path, frames):
    model, processor = load_groundvts(tiny_model_folder(), device="cpu")
    result = ground(model, processor, tiny_videos()["c"], "a dog in the kitchen", max_new_tokens=1)
    path = plot_grounding(result, tmp_path / "fig.png", truth=(2.0, 6.0), spatial_frames=frames)
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000
