"""The whole recipe on a tiny model: stage 1 → 2 → 3 → merge through `groundvts train` / `groundvts merge`.

Checks what each stage may change (stage 1: VTS only; stages 2-3: LoRA, VTS, projector; never the vision
encoder or the LLM base weights), that merging keeps the logits, and that the merged model loads through
trust_remote_code in a fresh process and generates.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from groundvts.scripts.cli import merge as merge_lora
from groundvts.scripts.cli import train
from groundvts.trainers.loading import load_model_and_processor
from isolated import run_isolated


def stage_args(stage, model, data, out, *extra):
    """Bundled recipe of `stage`, shrunk for CPU; `data` is a Grounding-FT jsonl or (json, video_root) LLaVA-Video."""
    data_sets = ([f"data.path={data[0]}", f"data.video_root={data[1]}"] if isinstance(data, tuple)
                 else ["data.format=grounding_ft", f"data.path={data}"])
    sets = [
        f"model={model}", *data_sets, f"training.output_dir={out}",
        "training.max_steps=3", "training.per_device_train_batch_size=2", "training.gradient_accumulation_steps=1",
        "training.bf16=false", "training.use_cpu=true", "training.save_strategy=no", "training.logging_steps=1",
        "training.learning_rate=1e-2", "training.warmup_steps=0", "training.video_max_frames=16",
        "training.video_max_pixels=3136", "training.dataloader_num_workers=0", *extra,
    ]
    return [f"groundvts-q-stage{stage}", *[arg for item in sets for arg in ("--set", item)]]


def weights(folder):
    return {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}


def changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def stages(tmp_path_factory, plain_qwen_dir, grounding_jsonl, llava_video_json):
    root = tmp_path_factory.mktemp("stages")
    s0, s1, s2, s3, merged = (root / name for name in ("stage0", "stage1", "stage2", "stage3", "merged"))
    # Plain backbone weights + a new VTS, saved, so that stage 1's changes can be compared tensor by tensor.
    model, processor = load_model_and_processor(plain_qwen_dir, {"vts_reduction_dim": 8})
    model.save_pretrained(s0)
    processor.save_pretrained(s0)
    # Stages 1-2 read LLaVA-Video-style json (the recipes' format), stage 3 Grounding-FT.
    assert train.main(stage_args(1, s0, llava_video_json, s1)) == 0
    assert train.main(stage_args(2, s1, llava_video_json, s2, "training.activation_checkpointing=true")) == 0
    assert train.main(stage_args(3, s1, grounding_jsonl, s3, f"adapter={s2}")) == 0
    assert merge_lora.main(["--base", str(s1), "--adapter", str(s3), "--output", str(merged)]) == 0
    return s0, s1, s2, s3, merged


def test_stage1_trains_every_vts_tensor_and_nothing_else(stages):
    s0, s1, *_ = stages
    before, after = weights(s0), weights(s1)
    assert before.keys() == after.keys()
    vts_keys = {k for k in before if k.startswith("model.vts.")}
    assert len(vts_keys) == 6  # wv, wq, mlp.0 weight/bias, mlp.2 weight/bias
    assert changed(before, after) == vts_keys


def test_stage1_starts_from_plain_backbone_weights(tmp_path, plain_qwen_dir, grounding_jsonl):
    out = tmp_path / "stage1"
    assert train.main(stage_args(1, plain_qwen_dir, grounding_jsonl, out, "vts.vts_reduction_dim=8", "training.max_steps=1")) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "groundvts_qwen2_5_vl" and config["vts_reduction_dim"] == 8
    assert config["auto_map"]["AutoModelForImageTextToText"].endswith("GroundVTSQwen2_5_VLForConditionalGeneration")
    assert {k for k in weights(out) if k.startswith("model.vts.")}


def test_stage2_and_3_train_lora_vts_projector_only(stages):
    _, s1, s2, s3, _ = stages
    base = weights(s1)
    for adapter_dir in (s2, s3):
        adapter = load_file(str(adapter_dir / "adapter_model.safetensors"))
        lora_b = [k for k in adapter if "lora_B" in k]
        assert lora_b and all(adapter[k].abs().sum() > 0 for k in lora_b)  # B starts at zero: it was trained
        assert not any("visual.blocks" in k or "patch_embed" in k for k in adapter)  # vision encoder untouched
        assert all(".self_attn." in k for k in adapter if "lora_" in k)  # LoRA on attention only
        vts = {k: v for k, v in adapter.items() if ".vts." in k}
        merger = {k: v for k, v in adapter.items() if ".merger." in k}
        assert vts and merger
        base_vts = {k: base[k] for k in base if k.startswith("model.vts.")}
        assert len(vts) == len(base_vts)
        for key, value in vts.items():
            name = "model.vts." + key.split(".vts.", 1)[1]
            assert not torch.equal(value.float(), base_vts[name]), key
    s2_adapter, s3_adapter = load_file(str(s2 / "adapter_model.safetensors")), load_file(str(s3 / "adapter_model.safetensors"))
    assert s2_adapter.keys() == s3_adapter.keys()
    assert changed(s2_adapter, s3_adapter)  # stage 3 continued training the stage-2 adapter


def test_merged_model_equals_adapter_and_loads_remotely(stages, tiny_processor, grounding_records, tmp_path):
    from peft import PeftModel

    from groundvts.trainers import GroundVTSVideoCollator

    _, s1, _, s3, merged = stages
    base, _ = load_model_and_processor(s1)
    unmerged = PeftModel.from_pretrained(base, str(s3)).eval()
    batch = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0})(grounding_records[:2])
    batch.pop("labels")
    merged_model, _ = load_model_and_processor(merged)
    merged_model.eval()
    with torch.no_grad():
        expected = unmerged(**batch).logits
        actual = merged_model(**batch).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)

    # Stage 1's vision encoder and LLM base weights survive into the merged model (except LoRA-merged attention).
    before, after = weights(s1), weights(merged)
    moved = changed(before, after)
    assert moved and all(".vts." in k or ".merger." in k or ".self_attn." in k for k in moved)

    code = f"""
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained({str(merged)!r}, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained({str(merged)!r}, trust_remote_code=True)
assert type(model).__name__ == "GroundVTSQwen2_5_VLForConditionalGeneration"
messages = [{{"role": "user", "content": [{{"type": "video"}}, {{"type": "text", "text": "when does the dog run?"}}]}}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(text=[prompt], videos=[{grounding_records[1]['videos'][0]!r}], return_tensors="pt", fps=2.0)
out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
assert out.shape[1] == inputs["input_ids"].shape[1] + 4
print("GENERATED", out.shape[1])
"""
    assert "GENERATED" in run_isolated(code, cwd=str(tmp_path)).stdout


def test_merge_refuses_an_existing_output_unless_overwrite(stages, capsys):
    _, s1, _, s3, merged = stages
    argv = ["--base", str(s1), "--adapter", str(s3), "--output", str(merged)]
    before = (merged / "model.safetensors").stat().st_mtime_ns
    assert merge_lora.main(argv) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "Traceback" not in err
    assert (merged / "model.safetensors").stat().st_mtime_ns == before  # untouched
    assert merge_lora.main([*argv, "--overwrite"]) == 0
    assert (merged / "config.json").is_file()
    assert merge_lora.main(["--base", str(s1), "--adapter", str(s3), "--output", str(s3)]) == 2
    assert "the base or the adapter" in capsys.readouterr().err


def test_stage_outputs_carry_the_groundvts_card_from_the_run(stages, grounding_jsonl, llava_video_json):
    s0, s1, s2, s3, _ = stages
    one = (s1 / "README.md").read_text()
    assert "GroundVTS stage 1, VTS warm-up" in one and "fine-tuned version of None" not in one
    assert f"from `{s0}`" in one and f"on `{llava_video_json[0]}`" in one and "library_name: transformers" in one
    three = (s3 / "README.md").read_text()
    assert "GroundVTS stage 3, grounding fine-tuning" in three and "library_name: peft" in three
    assert f"groundvts merge --base {s1} --adapter" in three and f"on `{grounding_jsonl}`" in three
    assert "base_model:" not in three  # a local folder is named in the text, not linked as a Hub id
