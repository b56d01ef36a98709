"""`groundvts release --dry-run` on a tiny GroundVTS-Q3: the folder has the Q3 code, processor and per-frame video
settings, and the card's usage snippet runs verbatim in a fresh process where `groundvts` is not importable."""

import json

import torch
from huggingface_hub import ModelCard

from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration
from groundvts.processing.tiny import build_tiny_qwen3_vl_processor, write_test_video
from groundvts.scripts.cli import release
from isolated import run_isolated
from tiny_models import spread_vts_scores, tiny_qwen3_config_for

REPO_ID = "test-org/groundvts-q3-tiny"

CHILD = """
import re, torch
folder, video = {folder!r}, {video!r}
readme = open(folder + "/README.md").read()
snippet = re.search(r"```python\\n(.*?)```", readme, re.S).group(1)
snippet = snippet.replace({repo_id!r}, folder).replace('"video.mp4"', repr(video))
scope = {{}}
exec(snippet, scope)  # the card's usage example, verbatim but for the repo id and video
model, processor, inputs = scope["model"], scope["processor"], scope["inputs"]
assert type(model).__name__ == "GroundVTSQwen3VLForConditionalGeneration", type(model)
assert type(processor).__name__ == "GroundVTSQwen3VLProcessor", type(processor)
for obj in (model, processor):
    assert type(obj).__module__.startswith("transformers_modules."), type(obj).__module__
text = processor.tokenizer.decode(inputs["input_ids"][0])
assert re.search(r"<\\d+\\.\\d seconds><\\|vision_start\\|>", text), text
with torch.no_grad():
    out = model(**inputs, return_vts_selection=True)
assert out.token_keep is not None and not out.token_keep.all()  # VTS ran in the remote code
assert isinstance(scope["answer"], str)
print("OK")
"""


def test_q3_release_dry_run_and_its_card_snippet(tmp_path):
    processor = build_tiny_qwen3_vl_processor()
    torch.manual_seed(0)
    model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config_for(processor)).eval()
    spread_vts_scores(model)
    model.save_pretrained(tmp_path / "checkpoint")
    processor.save_pretrained(tmp_path / "checkpoint")
    out = tmp_path / "out"
    args = [str(tmp_path / "checkpoint"), "--repo-id", REPO_ID, "--out-dir", str(out), "--dry-run",
            "--fps", "1", "--max-frames", "8", "--max-pixels", "4096", "--max-new-tokens", "4",
            "--base-model", "Qwen/Qwen3-VL-8B-Instruct"]  # never guessed: from the run or the flag
    assert release.main(args) == 0

    names = {p.name for p in out.iterdir()}
    assert {"modeling_groundvts_qwen3_vl.py", "configuration_groundvts_qwen3_vl.py", "qwen_vl_mixin.py", "vts.py",
            "processing_groundvts_qwen3_vl.py", "qwen_vl_processing.py", "video_sampling.py"} <= names
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "groundvts_qwen3_vl"
    assert config["auto_map"]["AutoModel"] == "modeling_groundvts_qwen3_vl.GroundVTSQwen3VLModel"
    video = json.loads((out / "processor_config.json").read_text())["video_processor"]
    # 4096 px per frame: 4 tokens of 32 x 32 px under Qwen3-VL's per-frame cap, the video budget never binding.
    assert (video["fps"], video["max_frames"], video["max_video_tokens"], video["cap_pixels_per_frame"]) == (
        1.0, 8, 4, True
    )
    assert video["size"]["longest_edge"] == 4096 * 8
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "Qwen/Qwen3-VL-8B-Instruct" and "qwen3_vl" in card.data.tags
    assert "1 fps, at most 8 frames, at most 4096 pixels" in card.text

    clip = write_test_video(tmp_path / "clip.mp4", num_frames=24, fps=4.0, size=(128, 128))
    proc = run_isolated(CHILD.format(folder=str(out), video=str(clip), repo_id=REPO_ID), cwd=str(tmp_path))
    assert proc.stdout.strip().endswith("OK")
