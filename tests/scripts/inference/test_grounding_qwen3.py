"""`ground()` and `groundvts ground --model` on a tiny GroundVTS-Q3 (loaded through its remote code): the budget, the
per-patch floor, token times on the video's true timeline and the command's output."""

import json
import math

import pytest
import torch

from groundvts.scripts.cli import ground as ground_cli
from groundvts.scripts.inference.grounding import ground
from groundvts.scripts.inference.loading import load_groundvts
from inference_test_utils import tiny_qwen3_folder, tiny_videos


@pytest.fixture(scope="module")
def loaded():
    return load_groundvts(tiny_qwen3_folder(), device="cpu")


def test_loads_the_q3_remote_code_classes(loaded):
    model, processor = loaded
    assert type(model).__name__ == "GroundVTSQwen3VLForConditionalGeneration"
    assert type(model).__module__.startswith("transformers_modules.")
    assert type(processor).__name__ == "GroundVTSQwen3VLProcessor"


def test_ground_keeps_the_budget_and_times_cover_the_video(loaded):
    model, processor = loaded
    video = tiny_videos()["a"]  # 32 frames at 4 fps = 8 s; sampled at 2 fps -> 8 temporal patches of 1 s
    result = ground(model, processor, video, "a person opens the door", max_new_tokens=3)
    units, rows, cols = result.grid
    n = units * rows * cols
    assert units == 8 and result.keep.numel() == result.scores.numel() == n
    assert int(result.keep.sum()) == math.ceil(0.5 * n)
    assert (result.keep.view(units, -1).sum(1) >= 1).all()  # every "<t seconds>" keeps a token
    assert result.duration == pytest.approx(8.0)
    assert result.token_times.shape == (n, 2)
    assert result.token_times[0, 0] == 0 and result.token_times[-1, 1] == pytest.approx(8.0)
    assert torch.allclose(result.unit_times[:, 1] - result.unit_times[:, 0], torch.ones(8, dtype=torch.float64))
    assert result.unit_frame_indices == [4 * k for k in range(8)]


def test_cli_ground_on_a_tiny_q3(capsys):
    folder, video = str(tiny_qwen3_folder()), str(tiny_videos()["b"])
    args = ["--model", folder, "--video", video, "--query", "the man walks", "--max-new-tokens", "3"]
    assert ground_cli.main(args) == 0
    assert "answer:" in capsys.readouterr().out
    assert ground_cli.main([*args, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["num_kept"] > 0
    assert ground_cli.main([*args, "--keep-ratio", "0"]) == 2
