"""scripts/inference/loading.py + generation.py + grounding.py: loading through remote code, one-pass grounding with
the VTS selection, token times from the real video timeline, and the `groundvts ground` command (cli/ground.py)."""

import json
import math

import pytest
import torch
from transformers import Qwen2_5_VLConfig

from groundvts.scripts.cli import ground as ground_cli
from groundvts.scripts.inference.generation import generate_answers, prepare_batch
from groundvts.scripts.inference.grounding import GroundingResult, describe, ground
from groundvts.scripts.inference.loading import NotGroundVTSModelError, configure_vts, load_groundvts
from inference_test_utils import default_script, script_answers, tiny_internvl_folder, tiny_model_folder, tiny_videos


@pytest.fixture(scope="module")
def loaded():
    return load_groundvts(tiny_model_folder(), device="cpu")


@pytest.fixture
def model(loaded):
    model, _ = loaded
    saved = (model.config.vts_keep_ratio, model.config.vts_strategy)
    yield model
    model.config.vts_keep_ratio, model.config.vts_strategy = saved


def test_loads_our_remote_code_classes(loaded):
    model, processor = loaded
    assert type(model).__name__ == "GroundVTSQwen2_5_VLForConditionalGeneration"
    assert type(model).__module__.startswith("transformers_modules.")  # the code saved with the weights
    assert type(processor).__name__ == "GroundVTSQwen2_5_VLProcessor"
    assert not model.training


def test_non_groundvts_folders_are_refused(tmp_path):
    Qwen2_5_VLConfig().save_pretrained(tmp_path / "plain")
    with pytest.raises(NotGroundVTSModelError, match="model_type 'qwen2_5_vl'"):
        load_groundvts(tmp_path / "plain")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotGroundVTSModelError, match="no config.json"):
        load_groundvts(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_groundvts(tmp_path / "nowhere")


def test_ground_keeps_the_budget_and_times_cover_the_video(loaded, model):
    _, processor = loaded
    video = tiny_videos()["a"]  # 32 frames at 4 fps = 8 s; sampled at 2 fps -> 8 temporal patches of 1 s
    result = ground(model, processor, video, "a person opens the door", max_new_tokens=4)
    units, rows, cols = result.grid
    n = units * rows * cols
    assert (units, result.keep.numel(), result.scores.numel()) == (8, n, n)
    assert int(result.keep.sum()) == math.ceil(0.5 * n)
    assert result.duration == pytest.approx(8.0)
    assert result.token_times.shape == (n, 2)
    assert result.token_times[0, 0] == 0 and result.token_times[-1, 1] == pytest.approx(8.0)
    assert torch.allclose(result.unit_times[:, 1] - result.unit_times[:, 0], torch.ones(8, dtype=torch.float64))
    assert result.unit_frame_indices == [4 * k for k in range(8)]  # source frames at 0, 1, ... 7 s
    assert torch.isfinite(result.scores).all() and isinstance(result.text, str)


def test_internvl_frames_take_their_segment_of_the_timeline():
    model, processor = load_groundvts(tiny_internvl_folder(), device="cpu")
    assert type(model).__name__ == "GroundVTSInternVLForConditionalGeneration"
    result = ground(model, processor, tiny_videos()["a"], "a person opens the door", max_new_tokens=2)
    # 4 frames of 2 x 2 tokens: segment centres of 32 source frames at 4 fps sit at 1, 3, 5, 7 s.
    assert result.grid == (4, 2, 2) and int(result.keep.sum()) == 8
    assert result.unit_frame_indices == [4, 12, 20, 28]
    assert result.unit_times.tolist() == [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [6.0, 8.0]]
    assert result.duration == pytest.approx(8.0)


def test_true_fps_sets_the_token_times(loaded, model):
    _, processor = loaded
    video = tiny_videos()["d"]  # 20 frames at 5 fps = 4 s
    result = ground(model, processor, video, "the man walks", fps=1.0, max_new_tokens=2)
    # 1 fps -> 4 frames -> 2 temporal patches of 2 s each (not 24-fps fallback times).
    assert result.unit_times.tolist() == [[0.0, 2.0], [2.0, 4.0]]
    assert result.token_times[-1, 1] == pytest.approx(4.0)


def test_selection_read_during_generate_equals_a_separate_forward(loaded, model):
    _, processor = loaded
    videos = [str(tiny_videos()[k]) for k in "abc"]
    prompts = ["a person opens the door", "a dog in the kitchen", "the woman holds a cup"]
    calls = []
    hook = model.model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs.get("pixel_values_videos") is not None), with_kwargs=True
    )
    try:
        answers = generate_answers(model, processor, videos, prompts, max_new_tokens=3)
    finally:
        hook.remove()
    assert calls.count(True) == 1  # one prefill with the video; the selection came from it
    inputs = prepare_batch(model, processor, videos, prompts, {})
    inputs.pop("video_metadata")
    mask = inputs["attention_mask"]
    assert mask[:, -1].all() and not mask[:, 0].all()  # left padding: every prompt ends at the last position
    with torch.no_grad():
        out = model(**inputs, return_vts_selection=True)
    for answer, keep, scores in zip(answers, out.video_keep, out.video_scores):
        assert torch.equal(answer.keep, keep)
        assert torch.allclose(answer.scores, scores)


def test_batched_answers_equal_one_by_one(loaded, model):
    _, processor = loaded
    videos = [str(tiny_videos()[k]) for k in "abcd"]
    prompts = ["a person opens the door", "the man walks", "a dog in the kitchen", "the woman holds a cup"]
    batched = generate_answers(model, processor, videos, prompts, max_new_tokens=6)
    single = [generate_answers(model, processor, [v], [p], max_new_tokens=6)[0] for v, p in zip(videos, prompts)]
    assert len({a.text for a in batched}) > 1  # the answers depend on the input, so the check can fail
    for a, b in zip(batched, single):
        assert a.text == b.text
        assert torch.equal(a.keep, b.keep)
        assert torch.equal(a.token_times, b.token_times)


def test_keep_ratio_and_strategy_overrides(loaded, model):
    _, processor = loaded
    video = tiny_videos()["c"]  # 10 s at 3 fps -> 10 patches of 4 tokens
    configure_vts(model, keep_ratio=0.25)
    result = ground(model, processor, video, "a person opens the door", max_new_tokens=1)
    assert int(result.keep.sum()) == math.ceil(0.25 * result.keep.numel())
    configure_vts(model, keep_ratio=0.5, strategy="uniform")
    result = ground(model, processor, video, "a person opens the door", max_new_tokens=1)
    per_unit = result.kept_per_unit
    assert set(per_unit.tolist()) <= {0.0, 1.0} and per_unit.sum() == 5  # whole frames, evenly spaced
    assert result.scores is None and result.strategy == "uniform"
    with pytest.raises(ValueError, match="keep_ratio"):
        configure_vts(model, keep_ratio=1.5)
    with pytest.raises(ValueError, match="Unknown VTS strategy"):
        configure_vts(model, strategy="best")


def test_hd_task_parses_highlights(loaded, model):
    _, processor = loaded
    script_answers(model, processor, default_script)
    try:
        result = ground(model, processor, tiny_videos()["a"], "a person opens the door", task="hd")
    finally:
        del model.generate  # back to the class method
    assert result.span == (2.0, 4.0)
    assert list(result.prediction.saliency_scores) == [0, 4, 0, 2]  # 8 s -> four 2-s clips


def _result(span, keep=None):
    keep = torch.tensor([True, False, True, True]) if keep is None else keep
    times = torch.tensor([[0.0, 2.0], [2.0, 4.0]], dtype=torch.float64)
    return GroundingResult(
        text="from 2.0s to 4.0s", span=span, prediction=None, task="mr", duration=4.0, keep=keep, scores=None,
        token_times=times.repeat_interleave(2, 0), grid=(2, 1, 2), unit_times=times, unit_frame_indices=[0, 2],
        video="x.mp4", keep_ratio=0.5, strategy="token",
    )


def test_describe_prints_span_truth_and_iou():
    text = describe(_result((2.0, 4.0)), truth=(3.0, 4.0))
    assert "span: from 2.0s to 4.0s" in text
    assert "truth: from 3.0s to 4.0s (IoU 0.500)" in text
    assert "kept 3" in text
    assert "span: none" in describe(_result(None), truth=(1.0, 2.0)) and "IoU 0.000" in describe(_result(None), (1, 2))


def test_cli_ground_prints_span_and_writes_pictures(tmp_path, capsys, monkeypatch, loaded):
    model, processor = loaded
    monkeypatch.setattr(ground_cli, "load_groundvts", lambda *a, **k: (script_answers(model, processor, default_script), processor))
    try:
        video = str(tiny_videos()["a"])
        args = ["--model", "tiny", "--video", video, "--query", "a person opens the door", "--truth", "2", "3"]
        assert ground_cli.main([*args, "--plot", str(tmp_path / "d.png"), "--spatial-frames", "3"]) == 0
        out = capsys.readouterr().out
        assert "span: from 1.0s to 3.0s" in out and "IoU 0.500" in out
        assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ground_cli.main([*args, "--json"]) == 0
        payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert payload["span"] == [1.0, 3.0] and payload["iou"] == 0.5 and payload["num_kept"] == 16
    finally:
        del model.generate


def test_cli_ground_with_the_random_model_and_bad_input(tmp_path, capsys):
    folder = str(tiny_model_folder())
    video = str(tiny_videos()["b"])
    assert ground_cli.main(["--model", folder, "--video", video, "--query", "the man walks", "--max-new-tokens", "3"]) == 0
    assert "answer:" in capsys.readouterr().out  # random weights: garbage answer, no crash
    bad = {
        "no video": ["--model", folder, "--query", "q"],
        "missing video": ["--model", folder, "--video", str(tmp_path / "none.mp4"), "--query", "q"],
        "not groundvts": ["--model", str(tmp_path), "--video", video, "--query", "q"],
        "bad ratio": ["--model", folder, "--video", video, "--query", "q", "--keep-ratio", "0"],
        "spatial without plot": ["--model", folder, "--video", video, "--query", "q", "--spatial-frames", "2"],
        "bad task": ["--model", folder, "--video", video, "--query", "q", "--task", "qa"],
    }
    for case, argv in bad.items():
        assert ground_cli.main(argv) == 2, case
        err = capsys.readouterr().err
        assert "error" in err and "Traceback" not in err, case


def test_cli_ground_json_is_valid_json_on_stdout_alone(capsys):
    """--demo prints its notes (demo, bundled model) to stderr, so stdout parses as one JSON document."""
    assert ground_cli.main(["--demo", "0", "--json", "--max-new-tokens", "3"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert "span" in payload and "iou" in payload  # the demo brings its true span
    assert "demo 0" in captured.err and "bundled GroundVTS-tiny" in captured.err


def test_cli_ground_refuses_ambiguous_or_impossible_input_before_loading(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ground_cli, "load_groundvts", lambda *a, **k: pytest.fail("the model loaded"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    video = str(tiny_videos()["b"])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    cases = {
        "demo with video": (["--demo", "1", "--video", video], "--demo"),
        "demo with query": (["--demo", "--query", "a dog"], "--demo"),
        "nan truth": (["--video", video, "--query", "q", "--truth", "nan", "3"], "--truth"),
        "infinite truth": (["--video", video, "--query", "q", "--truth", "1", "inf"], "--truth"),
        "cuda without a GPU": (["--video", video, "--query", "q", "--device", "cuda"], "no CUDA GPU"),
        "not a device": (["--video", video, "--query", "q", "--device", "gpu0"], "not a device"),
        "plot as text": (["--video", video, "--query", "q", "--plot", str(tmp_path / "density.txt")], ".png"),
        "plot without extension": (["--video", video, "--query", "q", "--plot", str(tmp_path / "density")], "--plot"),
        "plot in a read-only folder": (["--video", video, "--query", "q", "--plot", str(locked / "d.png")], "read-only"),
    }
    try:
        for case, (argv, message) in cases.items():
            assert ground_cli.main(argv) == 2, case
            err = capsys.readouterr().err
            assert message in err and "Traceback" not in err, (case, err)
    finally:
        locked.chmod(0o755)


def test_a_query_past_the_model_positions_is_refused(loaded, model, monkeypatch):
    _, processor = loaded
    video = str(tiny_videos()["a"])
    inputs = prepare_batch(model, processor, [video], ["a short query"], {})
    total = int(inputs["attention_mask"].sum())
    video_tokens = int((inputs["input_ids"] == model.config.video_token_id).sum())
    monkeypatch.setattr(model.config.get_text_config(), "max_position_embeddings", total)
    with pytest.raises(ValueError, match="positions"):  # the text alone does not fit
        generate_answers(model, processor, [video], ["word " * total], max_new_tokens=2)
    with pytest.warns(UserWarning, match="positions"):  # it fits only once VTS has pruned the video
        generate_answers(model, processor, [video], ["a short query"], max_new_tokens=video_tokens // 2)
