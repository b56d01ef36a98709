"""Pictures of what VTS kept (headless, matplotlib Agg).

- `plot_grounding(result, path, truth=..., spatial_frames=N)`: the paper's Figure 5, the share of each temporal
  unit's visual tokens that VTS kept over time, with the predicted span shaded and the ground truth marked;
  with `spatial_frames=N`, a second row in the style of Figure 7: N frames with their removed tokens dimmed.
- `kept_density(result)`: the numbers behind the curve, (unit start, unit end, kept fraction, mean relevance).

`result` is a `GroundingResult` from `groundvts.scripts.inference.grounding`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:  # annotations only: plotting reads the fields of a result and needs no import of it
    from groundvts.scripts.inference.grounding import GroundingResult

__all__ = ["kept_density", "spatial_units", "plot_grounding"]

SPAN_COLOR, TRUTH_COLOR, BAR_COLOR = "tab:green", "tab:orange", "tab:blue"


def kept_density(result: GroundingResult) -> list[tuple[float, float, float, float | None]]:
    """Per temporal unit: (start s, end s, fraction of its tokens kept, mean relevance score or None)."""
    units = result.grid[0]
    kept = result.keep.view(units, -1).float().mean(1).tolist()
    scores = result.scores.view(units, -1).float().mean(1).tolist() if result.scores is not None else [None] * units
    return [(float(s), float(e), k, w) for (s, e), k, w in zip(result.unit_times.tolist(), kept, scores)]


def spatial_units(result: GroundingResult, count: int) -> list[int]:
    """`count` temporal units spread evenly over the video (all of them if there are fewer)."""
    units = result.grid[0]
    count = min(count, units)
    if count <= 0:
        return []
    return sorted({int(round(i)) for i in np.linspace(0, units - 1, count)})


def _density_axes(ax: Any, result: Any, truth: tuple[float, float] | None, query: str | None) -> None:
    density = kept_density(result)
    starts = [d[0] for d in density]
    widths = [max(d[1] - d[0], 1e-6) for d in density]
    ax.bar(starts, [d[2] for d in density], width=widths, align="edge", color=BAR_COLOR, alpha=0.75,
           edgecolor="white", label="kept tokens")
    if result.scores is not None:
        relevance = np.array([d[3] for d in density])
        if relevance.max() > 0:
            centres = [d[0] + w / 2 for d, w in zip(density, widths)]
            ax.plot(centres, relevance / relevance.max(), color="black", linewidth=1, label="relevance (scaled)")
    if result.span is not None:
        ax.axvspan(*result.span, color=SPAN_COLOR, alpha=0.25, label="prediction")
    if truth is not None:
        ax.axvspan(*truth, facecolor="none", edgecolor=TRUTH_COLOR, hatch="//", linewidth=1.5, label="ground truth")
    ax.axhline(result.keep_ratio, color="gray", linestyle="--", linewidth=0.8, label=f"rho = {result.keep_ratio:g}")
    ax.set_xlim(0, result.duration)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("share of tokens kept")
    title = "Kept-token density"
    if query:
        title += f": {query if len(query) <= 70 else query[:67] + '...'}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")


def _unit_frames(result: Any, units: list[int]) -> list[np.ndarray | None]:
    """The source frame of each unit, decoded from the video file (None where it cannot be read)."""
    from groundvts.processing.video_sampling import decode_video_frames

    try:
        frames = decode_video_frames(result.video, [result.unit_frame_indices[u] for u in units])
        return [np.asarray(f) for f in frames]
    except (ValueError, OSError, ImportError):
        return [None] * len(units)


def _spatial_axes(ax: Any, result: Any, unit: int, frame: np.ndarray | None) -> None:
    _, rows, cols = result.grid
    keep = result.keep.view(result.grid[0], rows, cols)[unit].numpy()
    if frame is not None:
        height, width = frame.shape[:2]
        ax.imshow(frame, extent=(0, width, height, 0))
        # Removed tokens dimmed, kept ones left clear.
        ax.imshow(np.where(keep, np.nan, 1.0), cmap="Greys", vmin=0, vmax=1, alpha=0.7,
                  extent=(0, width, height, 0), interpolation="nearest")
    else:
        ax.imshow(keep, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    start, end = result.unit_times[unit].tolist()
    ax.set_title(f"{start:.1f}-{end:.1f}s: {int(keep.sum())}/{keep.size} kept", fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_grounding(
    result: GroundingResult,
    path: str | Path,
    *,
    truth: tuple[float, float] | None = None,
    spatial_frames: int = 0,
    query: str | None = None,
) -> Path:
    """Write the kept-token density figure (and `spatial_frames` retention maps) to `path` (PNG, PDF, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    units = spatial_units(result, spatial_frames)
    if units:
        fig = plt.figure(figsize=(max(7.0, 1.8 * len(units)), 5.2))
        grid = fig.add_gridspec(2, len(units), height_ratios=[1.3, 1])
        _density_axes(fig.add_subplot(grid[0, :]), result, truth, query)
        for column, (unit, frame) in enumerate(zip(units, _unit_frames(result, units))):
            _spatial_axes(fig.add_subplot(grid[1, column]), result, unit, frame)
    else:
        fig, ax = plt.subplots(figsize=(7.0, 2.8))
        _density_axes(ax, result, truth, query)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
