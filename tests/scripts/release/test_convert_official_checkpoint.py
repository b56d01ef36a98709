"""Conversion of a tiny checkpoint written in the official GroundVTS (Qwen) release layout."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.scripts.cli.convert import main
from groundvts.scripts.release.convert import convert_checkpoint
from tiny_models import collate, tiny_qwen_config, video_sample

D, DR = 32, 8


def official_checkpoint(folder):
    """Stock Qwen2.5-VL weights (legacy key names) + `vts_module.*` + an official, flat config.json."""
    torch.manual_seed(3)
    ours = tiny_qwen_config().to_dict()
    stock = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(**{k: v for k, v in ours.items() if not k.startswith("vts_")})
    )
    stock.save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    assert "model.layers.0.self_attn.q_proj.weight" in weights  # legacy names, as released
    vts = {
        "vts_module.Wf.weight": torch.randn(DR, D),
        "vts_module.Wq.weight": torch.randn(DR, D),
        "vts_module.post_mlp.0.weight": torch.randn(D, D),
        "vts_module.post_mlp.0.bias": torch.randn(D),
        "vts_module.post_mlp.2.weight": torch.randn(D, D),
        "vts_module.post_mlp.2.bias": torch.randn(D),
    }
    save_file({**weights, **vts}, folder / "model.safetensors", metadata={"format": "pt"})
    # transformers 4.51-style flat config: text fields at the top level, mrope in rope_scaling.
    text = ours.pop("text_config")
    flat = {k: v for k, v in ours.items() if not k.startswith("vts_")}
    flat.update({k: v for k, v in text.items() if k not in ("rope_parameters", "model_type", "layer_types")})
    flat.update(
        model_type="vts_qwen2_5_vl", architectures=["VTS_Qwen2_5_VLForConditionalGeneration"],
        rope_scaling={"type": "mrope", "mrope_section": [2, 1, 1]}, rope_theta=10000.0,
        VTS_hidden_size=DR, VTS_token_ratio=0.5, VTS_temp=0.7,
    )
    (folder / "config.json").write_text(json.dumps(flat))
    return stock, vts


def test_official_qwen_checkpoint_converts(tmp_path):
    stock, vts = official_checkpoint(tmp_path / "official")
    out = convert_checkpoint(tmp_path / "official", tmp_path / "ours")
    model, info = GroundVTSQwen2_5_VLForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    config = model.config
    assert config.model_type == "groundvts_qwen2_5_vl" and "auto_map" in json.loads((out / "config.json").read_text())
    assert (config.vts_reduction_dim, config.vts_keep_ratio) == (DR, 0.5)
    assert config.vts_temperature == config.vts_weight_temperature == 0.7
    assert (config.vts_query_pooling, config.vts_train_selection) == ("prompt", "topk")
    assert config.text_config.rope_parameters["mrope_section"] == [2, 1, 1]
    assert torch.equal(model.model.vts.wv.weight, vts["vts_module.Wf.weight"])
    assert torch.equal(model.model.vts.mlp[2].bias, vts["vts_module.post_mlp.2.bias"])
    ours = model.state_dict()
    for name, tensor in stock.state_dict().items():
        assert torch.equal(ours[name], tensor), name
    # With sampling off, the converted model is exactly the official base model, given the same M-RoPE positions
    # (ours follow the pretrained rule after a video, stock transformers 5.23's do not: field notes 4.2).
    model.config.vts_strategy = "dense"
    batch = collate([video_sample(prefix=2, grid=(2, 4, 4), question=3, seed=0)])
    positions, _ = model.model.get_rope_index(
        batch["input_ids"], batch["mm_token_type_ids"], video_grid_thw=batch["video_grid_thw"],
        second_per_grid_ts=batch["second_per_grid_ts"], attention_mask=batch["attention_mask"],
    )
    with torch.no_grad():
        ours = model.eval()(**batch).logits
        assert torch.allclose(ours, stock.eval()(**batch, position_ids=positions).logits, atol=1e-5)


def test_not_a_convertible_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava"}))
    assert main([str(tmp_path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'llava'" in err and "vts_qwen2_5_vl" in err and "qwen2_5_vl" in err
    assert main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    with pytest.raises(FileNotFoundError, match="config.json"):
        convert_checkpoint(tmp_path / "missing", tmp_path / "out")


def test_official_checkpoint_gets_our_processor(tmp_path, capsys):
    from transformers import AutoProcessor, Qwen2_5_VLProcessor

    from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor

    official_checkpoint(tmp_path / "official")
    tiny = build_tiny_qwen2_5_vl_processor()
    Qwen2_5_VLProcessor(image_processor=tiny.image_processor, tokenizer=tiny.tokenizer,  # stock, as released
                        video_processor=tiny.video_processor, chat_template=tiny.chat_template).save_pretrained(tmp_path / "official")
    assert main([str(tmp_path / "official"), str(tmp_path / "ours")]) == 0
    out = capsys.readouterr().out
    assert "VTS weights: trained" in out and "processor: GroundVTSQwen2_5_VLProcessor" in out
    processor = AutoProcessor.from_pretrained(tmp_path / "ours", trust_remote_code=True)
    assert type(processor).__name__ == "GroundVTSQwen2_5_VLProcessor"


def test_official_checkpoint_without_processor_files_says_how_to_add_one(tmp_path, capsys):
    official_checkpoint(tmp_path / "official")
    assert main([str(tmp_path / "official"), str(tmp_path / "ours")]) == 0
    out = capsys.readouterr().out
    assert "processor: none" in out and f"groundvts convert {tmp_path / 'ours'} NEW_DIR --processor" in out
    assert not (tmp_path / "ours" / "processor_config.json").exists()
    # Named explicitly, a processor source that does not work is an error, not a note.
    assert main([str(tmp_path / "official"), str(tmp_path / "again"), "--processor", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err
