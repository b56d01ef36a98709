"""`groundvts release`: the dry-run repo folder loads with remote code in a fresh process (model, AutoModel,
processor) and matches the source, the card's usage snippet runs, its model-index equals the results file; the
upload goes to the right repo (faked HfApi); bad input exits with 2 and a message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration
from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.processing.prompts import prepare_inference_inputs
from groundvts.processing.tiny import (
    build_tiny_internvl_processor,
    build_tiny_qwen2_5_vl_processor,
    write_test_video,
)
from groundvts.scripts.cli import release
from groundvts.scripts.release import repo as release_repo
from groundvts.scripts.release.model_card import eval_results_from_files
from isolated import run_isolated
from tiny_models import spread_vts_scores, tiny_internvl_config_for, tiny_qwen_config_for

REPO_ID = "test-org/groundvts-q-tiny"
QUERY = "a person opens the door"  # the card snippet's query
RESULTS = {
    "charades_sta": {"R1@0.3": 70.51, "R1@0.5": 58.2, "R1@0.7": 35.07, "mIoU": 50.1, "num_queries": 3720},
    "qvhighlights": {"MR-full-R1@0.5": 61.3, "HL-min-VeryGood-Hit1": 62.9, "MR-full-mAP": 40.2},
}
# What `groundvts evaluate --output` writes for one benchmark; the card takes the split it recorded.
NEXTGQA_EVALUATE_OUTPUT = {
    "benchmark": "nextgqa", "annotations": "data/nextgqa/val.csv", "split": "val", "metric": "nextgqa",
    "num_queries": 5553, "num_predictions": 5553, "num_missing": 0,
    "metrics": {"mIoU": 28.31, "mIoP": 40.05, "IoU@0.3": 38.9, "IoU@0.5": 25.2, "IoP@0.3": 47.72, "IoP@0.5": 40.1,
                "Acc@QA": 70.2, "Acc@GQA": 31.9, "IoU@0.1": 55.5, "num_unparsed": 12},
    "convention": "eval_ground",
    "conventions": {key: "eval_ground" for key in ("mIoU", "mIoP", "IoU@0.3", "IoU@0.5", "IoP@0.3", "IoP@0.5",
                                                    "Acc@QA", "Acc@GQA", "IoU@0.1")},
}
# The tiny processor samples 2 fps, at most 32 frames; the release sets other values so that the test sees them.
RELEASE_VIDEO = {"fps": 1.0, "max_frames": 6, "max_pixels": 3136}


def tiny_qwen_model(processor):
    config = tiny_qwen_config_for(processor)
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(config).eval()
    spread_vts_scores(model)
    return model


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A saved tiny GroundVTS-Q checkpoint with its processor, a video and a results file."""
    root = tmp_path_factory.mktemp("release")
    processor = build_tiny_qwen2_5_vl_processor()
    model = tiny_qwen_model(processor)
    model.save_pretrained(root / "checkpoint")
    processor.save_pretrained(root / "checkpoint")
    (root / "results.json").write_text(json.dumps(RESULTS))
    (root / "nextgqa.json").write_text(json.dumps(NEXTGQA_EVALUATE_OUTPUT))
    video = write_test_video(root / "clip.mp4", num_frames=16, fps=4.0)
    return {"root": root, "checkpoint": root / "checkpoint", "results": root / "results.json", "video": video}


def release_args(workspace, out: Path, *extra: str) -> list[str]:
    return [str(workspace["checkpoint"]), "--repo-id", REPO_ID, "--out-dir", str(out), *extra]


@pytest.fixture(scope="module")
def released(workspace):
    out = workspace["root"] / "out"
    args = release_args(
        workspace, out, "--dry-run", "--results", str(workspace["results"]),
        "--results", str(workspace["root"] / "nextgqa.json"),
        "--dataset", "charades_sta=test-org/charades-sta", "--split", "qvhighlights=test",
        "--fps", "1", "--max-frames", "6", "--max-pixels", "3136", "--max-new-tokens", "6",
        "--base-model", "Qwen/Qwen2.5-VL-7B-Instruct", "--training-datasets", "lmms-lab/LLaVA-Video-178K",
    )
    assert release.main(args) == 0
    return out


def test_folder_has_weights_code_processor_and_greedy_generation_config(released):
    names = {p.name for p in released.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "README.md", "processor_config.json"} <= names
    assert not any(name.endswith(".bin") for name in names)
    assert {"modeling_groundvts_qwen2_5_vl.py", "configuration_groundvts_qwen2_5_vl.py", "vts.py", "token_pruning.py",
            "processing_groundvts_qwen2_5_vl.py", "video_sampling.py", "query_mask.py"} <= names
    config = json.loads((released / "config.json").read_text())
    assert config["model_type"] == "groundvts_qwen2_5_vl"
    assert config["auto_map"]["AutoModel"] == "modeling_groundvts_qwen2_5_vl.GroundVTSQwen2_5_VLModel"
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageTextToText"}
    processor_config = json.loads((released / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"].endswith("GroundVTSQwen2_5_VLProcessor")
    video = processor_config["video_processor"]
    assert (video["fps"], video["max_frames"], video["size"]["longest_edge"]) == (1.0, 6, 3136)
    generation = json.loads((released / "generation_config.json").read_text())
    assert generation["do_sample"] is False and generation["num_beams"] == 1 and generation["max_new_tokens"] == 6
    tokenizer_eos = build_tiny_qwen2_5_vl_processor().tokenizer.eos_token_id
    assert tokenizer_eos in (generation["eos_token_id"] if isinstance(generation["eos_token_id"], list) else [generation["eos_token_id"]])


def test_card_metadata_parses_and_model_index_equals_the_results(released):
    card = ModelCard.load(released / "README.md")
    data = card.data
    assert data.base_model == "Qwen/Qwen2.5-VL-7B-Instruct" and data.license == "apache-2.0"
    assert data.library_name == "transformers" and data.pipeline_tag == "video-text-to-text"
    assert "custom_code" in data.tags and "test-org/charades-sta" in data.datasets
    assert "lmms-lab/LLaVA-Video-178K" in data.datasets
    found: dict[tuple, dict[str, float]] = {}
    for result in data.eval_results:
        found.setdefault((result.dataset_type, result.dataset_split), {})[result.metric_type] = result.metric_value
    expected = {
        ("test-org/charades-sta", "test"): {k: v for k, v in RESULTS["charades_sta"].items() if not k.startswith("num_")},
        ("qvhighlights", "test"): RESULTS["qvhighlights"],
        # Only the standard metrics of an evaluate file; neither counts nor IoU@0.1.
        ("nextgqa", "val"): {k: v for k, v in NEXTGQA_EVALUATE_OUTPUT["metrics"].items() if k not in ("IoU@0.1", "num_unparsed")},
    }
    assert found == expected
    # Standard metrics in their usual order first.
    qvh = [r.metric_type for r in data.eval_results if r.dataset_name == "QVHighlights"]
    assert qvh == ["MR-full-R1@0.5", "MR-full-mAP", "HL-min-VeryGood-Hit1"]
    assert data.model_name == "groundvts-q-tiny"
    # Each number states its convention: the one `groundvts evaluate` recorded; hand-written files state none.
    configs = {(r.dataset_name, r.metric_config) for r in data.eval_results}
    assert configs == {("NExT-GQA", "eval_ground"), ("Charades-STA", None), ("QVHighlights", None)}
    assert "| NExT-GQA | val | mIoU | 28.31 | eval_ground |" in card.text
    assert "| mIoU | " in card.text and "not stated |" in card.text
    for text in ("trust_remote_code=True", "groundvts ground", "vts_keep_ratio", "@article{fan2026groundvts",
                 "1 fps, at most 6 frames, at most 3136 pixels", "max_new_tokens=6"):
        assert text in card.text, text


CHILD = """
import json, re, torch
from transformers import AutoModel, AutoModelForImageTextToText, AutoProcessor
folder, video = {folder!r}, {video!r}
readme = open(folder + "/README.md").read()
snippet = re.search(r"```python\\n(.*?)```", readme, re.S).group(1)
snippet = snippet.replace({repo_id!r}, folder).replace('"video.mp4"', repr(video))
scope = {{}}
exec(snippet, scope)  # the card's usage example, verbatim but for the repo id and video
model, processor, inputs = scope["model"], scope["processor"], scope["inputs"]
for obj in (model, processor):
    assert type(obj).__module__.startswith("transformers_modules."), type(obj).__module__
assert type(model).__name__ == "GroundVTSQwen2_5_VLForConditionalGeneration"
assert type(processor).__name__ == "GroundVTSQwen2_5_VLProcessor"
with torch.no_grad():
    out = model(**inputs, return_vts_selection=True)
assert out.token_keep is not None and not out.token_keep.all()  # VTS ran in the remote code
inner, info = AutoModel.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
assert type(inner).__name__ == "GroundVTSQwen2_5_VLModel" and not info["missing_keys"], info
assert torch.equal(inner.vts.wv.weight, model.model.vts.wv.weight)
torch.save({{"inputs": dict(inputs), "logits": out.logits, "output": scope["output"], "answer": scope["answer"]}},
           "child.pt")
print("OK")
"""


def test_released_folder_loads_in_a_fresh_process_and_matches_the_source(workspace, released, tmp_path):
    # Expected: the source model on inputs from the source processor called with the release's video settings.
    source = GroundVTSQwen2_5_VLForConditionalGeneration.from_pretrained(workspace["checkpoint"]).eval()
    processor = build_tiny_qwen2_5_vl_processor()
    inputs = prepare_inference_inputs(processor, QUERY, str(workspace["video"]), **RELEASE_VIDEO)
    eos = json.loads((released / "generation_config.json").read_text())["eos_token_id"]
    with torch.no_grad():
        logits = source(**inputs).logits
        generated = source.generate(**inputs, max_new_tokens=6, do_sample=False, eos_token_id=eos,
                                    pad_token_id=processor.tokenizer.pad_token_id)

    proc = run_isolated(
        CHILD.format(folder=str(released), video=str(workspace["video"]), repo_id=REPO_ID), cwd=str(tmp_path)
    )
    assert proc.stdout.strip().endswith("OK")
    child = torch.load(tmp_path / "child.pt")
    assert set(child["inputs"]) == set(inputs)
    for key, value in inputs.items():
        assert torch.equal(child["inputs"][key], value), key
    # Equal up to float rounding (weights at other memory alignments); a wrong weight shows up as >1e-2.
    assert torch.allclose(child["logits"], logits, rtol=0, atol=1e-6), (child["logits"] - logits).abs().max()
    assert torch.equal(child["output"], generated)
    assert child["answer"] == processor.decode(generated[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_default_video_settings_are_the_checkpoints_and_paper_ones_on_request(workspace, tmp_path):
    saved = json.loads((workspace["checkpoint"] / "processor_config.json").read_text())["video_processor"]
    assert release.main(release_args(workspace, tmp_path / "out", "--dry-run")) == 0
    video = json.loads((tmp_path / "out" / "processor_config.json").read_text())["video_processor"]
    keys = lambda v: (v["fps"], v["max_frames"], v["size"]["longest_edge"])  # noqa: E731
    assert keys(video) == keys(saved)  # what the model was trained with, not the paper's 7B settings
    assert json.loads((tmp_path / "out" / "generation_config.json").read_text())["max_new_tokens"] == 256
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert not card.data.eval_results  # no results file, no model-index
    assert card.data.base_model is None and not card.data.datasets and "not recorded" in card.text  # never guessed
    assert release.main(release_args(workspace, tmp_path / "paper", "--dry-run", "--paper-video-settings")) == 0
    video = json.loads((tmp_path / "paper" / "processor_config.json").read_text())["video_processor"]
    assert keys(video) == (2.0, 128, 16384)


def test_card_lineage_comes_from_the_training_run(workspace, tmp_path):
    from groundvts.trainers.model_card import stage_model_card

    checkpoint = tmp_path / "trained"
    shutil.copytree(workspace["checkpoint"], checkpoint)
    (checkpoint / "README.md").write_text(stage_model_card(
        model_name="trained", stage=1, base_model="Qwen/Qwen2.5-VL-3B-Instruct", dataset="org/my-videos",
        adapter=False, settings={}))
    assert release.main([str(checkpoint), "--repo-id", REPO_ID, "--out-dir", str(tmp_path / "out"), "--dry-run"]) == 0
    data = ModelCard.load(tmp_path / "out" / "README.md").data
    assert data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct" and data.datasets == ["org/my-videos"]
    assert release.main([str(checkpoint), "--repo-id", REPO_ID, "--out-dir", str(tmp_path / "flag"), "--dry-run",
                         "--base-model", "org/other"]) == 0
    assert ModelCard.load(tmp_path / "flag" / "README.md").data.base_model == "org/other"


def test_upload_creates_the_repo_and_uploads_the_folder(workspace, tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    monkeypatch.setattr(release_repo, "HfApi", FakeApi)  # the library makes the Hub calls
    out = tmp_path / "out"
    assert release.main(release_args(workspace, out, "--private", "--token", "hf_x")) == 0
    init, create, upload = calls
    assert init == ("init", "hf_x")
    assert create == ("create_repo", REPO_ID, {"repo_type": "model", "private": True, "exist_ok": True})
    assert upload[1]["repo_id"] == REPO_ID and upload[1]["repo_type"] == "model"
    assert Path(upload[1]["folder_path"]) == out and (out / "model.safetensors").is_file()


def test_a_failed_upload_exits_1_with_a_message(workspace, tmp_path, monkeypatch, capsys):
    class OfflineApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            raise OSError("no network")

    monkeypatch.setattr(release_repo, "HfApi", OfflineApi)
    assert release.main(release_args(workspace, tmp_path / "out")) == 1
    err = capsys.readouterr().err
    assert f"error: upload to {REPO_ID} failed: no network" in err and "Traceback" not in err


def write_config(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: write_config(root / "stock", {"model_type": "qwen2_5_vl"}), "is not a GroundVTS checkpoint"),
    (lambda root: write_config(root / "official", {"model_type": "vts_qwen2_5_vl"}), "groundvts convert"),
    (lambda root: root / "missing", "config.json not found"),
])
def test_a_folder_that_is_not_a_groundvts_checkpoint_exits_2(tmp_path, capsys, make, message):
    folder = make(tmp_path)
    assert release.main([str(folder), "--repo-id", REPO_ID, "--out-dir", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("results", "extra", "message"), [
    ({"charades": {"mIoU": 1.0}}, [], "unknown benchmark 'charades'"),
    ({"charades_sta": {"mIoU": "high"}}, [], "not a finite number"),
    ({"charades_sta": {"num_queries": 3}}, [], "none of its standard metrics"),
    ({"charades_sta": {"R1@0.5": None}}, [], "not a finite number"),  # NaN in the evaluate output
    ({"charades_sta": {"mIoU": 1.0}}, ["--dataset", "nextgqa=org/nextgqa"], "without results"),
    ([1, 2], [], "must map benchmark names"),
])
def test_bad_results_files_exit_2(workspace, tmp_path, capsys, results, extra, message):
    (tmp_path / "results.json").write_text(json.dumps(results))
    args = release_args(workspace, tmp_path / "out", "--dry-run", "--results", str(tmp_path / "results.json"), *extra)
    assert release.main(args) == 2
    assert message in capsys.readouterr().err


def test_other_bad_input_exits_2(workspace, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert release.main(release_args(workspace, out, "--dry-run")) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert release.main(release_args(workspace, tmp_path / "o2", "--dry-run", "--processor", str(tmp_path))) == 2
    assert "--processor" in capsys.readouterr().err
    assert release.main([str(workspace["checkpoint"]), "--repo-id", "bad id!", "--out-dir", str(tmp_path / "o3")]) == 2
    assert "Repo id" in capsys.readouterr().err
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    for path in workspace["checkpoint"].iterdir():
        if not path.name.endswith(".safetensors"):
            (no_weights / path.name).write_bytes(path.read_bytes())
    assert release.main([str(no_weights), "--repo-id", REPO_ID, "--out-dir", str(tmp_path / "o4"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "Could not load GroundVTSQwen2_5_VLForConditionalGeneration" in err and "Traceback" not in err


def test_groundvts_i_release_takes_the_vision_tower_frame_size(tmp_path, capsys):
    processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)
    config = tiny_internvl_config_for(processor, num_hidden_layers=1)
    GroundVTSInternVLForConditionalGeneration(config).save_pretrained(tmp_path / "checkpoint")
    processor.save_pretrained(tmp_path / "processor")
    args = [str(tmp_path / "checkpoint"), "--repo-id", "org/groundvts-i-tiny", "--processor", str(tmp_path / "processor"),
            "--dry-run", "--base-model", "OpenGVLab/InternVL3_5-8B-HF"]
    assert release.main(args + ["--out-dir", str(tmp_path / "bad"), "--image-size", "448"]) == 2
    assert "takes 56 px frames" in capsys.readouterr().err
    assert release.main(args + ["--out-dir", str(tmp_path / "out")]) == 0
    video = json.loads((tmp_path / "out" / "processor_config.json").read_text())["video_processor"]
    assert video["num_frames"] == 4 and (video["size"]["height"], video["size"]["width"]) == (56, 56)  # the saved 4
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.base_model == "OpenGVLab/InternVL3_5-8B-HF" and "4 frames of 56×56 px" in card.text
    assert json.loads((tmp_path / "out" / "config.json").read_text())["auto_map"]["AutoModel"].endswith("GroundVTSInternVLModel")


def test_all_metrics_adds_the_non_standard_ones_but_never_counts(tmp_path):
    path = tmp_path / "nextgqa.json"
    path.write_text(json.dumps(NEXTGQA_EVALUATE_OUTPUT))
    standard = [r.metric_type for r in eval_results_from_files([path], {}, {})]
    every = [r.metric_type for r in eval_results_from_files([path], {}, {}, all_metrics=True)]
    assert standard == ["mIoU", "mIoP", "IoU@0.3", "IoU@0.5", "IoP@0.3", "IoP@0.5", "Acc@QA", "Acc@GQA"]
    assert every == standard + ["IoU@0.1"]
    with pytest.raises(ValueError, match="more than one"):
        eval_results_from_files([path, path], {}, {})
