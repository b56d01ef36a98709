"""GroundVTS-Q3: saving, loading through trust_remote_code in a fresh process, and loading plain Qwen3-VL weights."""

import json

import pytest
import torch
from transformers import Qwen3VLForConditionalGeneration, Qwen3VLModel

from groundvts.modeling.modeling_groundvts_qwen3_vl import (
    GroundVTSQwen3VLForConditionalGeneration,
    GroundVTSQwen3VLModel,
)
from isolated import run_isolated
from tiny_models import SAMPLES_FOR_HUB, collate_qwen3, qwen3_video_sample, stock_qwen3_config, tiny_qwen3_config


def test_save_then_remote_code_load_in_fresh_process(qwen3_model, tmp_path):
    folder = tmp_path / "groundvts-q3-tiny"
    qwen3_model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "groundvts_qwen3_vl" and config["vts_min_tokens_per_frame"] == 1
    assert config["auto_map"] == {
        "AutoConfig": "configuration_groundvts_qwen3_vl.GroundVTSQwen3VLConfig",
        "AutoModel": "modeling_groundvts_qwen3_vl.GroundVTSQwen3VLModel",
        "AutoModelForImageTextToText": "modeling_groundvts_qwen3_vl.GroundVTSQwen3VLForConditionalGeneration",
    }
    for name in (
        "modeling_groundvts_qwen3_vl.py",
        "configuration_groundvts_qwen3_vl.py",
        "qwen_vl_mixin.py",
        "groundvts_mixin.py",
        "vts.py",
        "token_pruning.py",
    ):
        assert (folder / name).is_file(), name
    assert not (folder / "mrope.py").exists()  # Qwen3-VL's stock positions are the pretrained ones

    batch = collate_qwen3([qwen3_video_sample(**s) for s in SAMPLES_FOR_HUB], "left")
    with torch.no_grad():
        expected = qwen3_model(**batch).logits
        expected_tokens = qwen3_model.generate(**batch, max_new_tokens=3, do_sample=False)
    torch.save({"batch": batch, "logits": expected, "tokens": expected_tokens}, tmp_path / "io.pt")

    proc = run_isolated(
        f"""
        import torch
        from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText
        folder, io = {str(folder)!r}, torch.load({str(tmp_path / "io.pt")!r})
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
        assert type(config).__name__ == "GroundVTSQwen3VLConfig" and config.vts_min_tokens_per_frame == 1
        model, info = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
        assert type(model).__name__ == "GroundVTSQwen3VLForConditionalGeneration", type(model)
        assert not type(model).__module__.startswith("groundvts"), type(model).__module__
        assert not any(info.values()), info
        model.eval()
        with torch.no_grad():
            logits = model(**io["batch"]).logits
            tokens = model.generate(**io["batch"], max_new_tokens=3, do_sample=False)
        assert torch.allclose(logits, io["logits"], rtol=0, atol=1e-6), (logits - io["logits"]).abs().max()
        assert torch.equal(tokens, io["tokens"])
        inner, info = AutoModel.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
        assert type(inner).__name__ == "GroundVTSQwen3VLModel", type(inner)
        assert not info["missing_keys"] and info["unexpected_keys"] == {{"lm_head.weight"}}, info
        assert torch.equal(inner.vts.wv.weight, model.model.vts.wv.weight)
        print("OK")
        """,
        cwd=str(tmp_path),
    )
    assert proc.stdout.strip().endswith("OK")


@pytest.mark.parametrize("stock_class", [Qwen3VLForConditionalGeneration, Qwen3VLModel])
@pytest.mark.parametrize("ours_class", [GroundVTSQwen3VLForConditionalGeneration, GroundVTSQwen3VLModel])
def test_plain_qwen3_vl_weights_load_with_only_vts_new(tmp_path, stock_class, ours_class):
    torch.manual_seed(1)
    stock = stock_class(stock_qwen3_config(tiny_qwen3_config()))
    stock.save_pretrained(tmp_path / "stock")
    saved_config = json.loads((tmp_path / "stock" / "config.json").read_text())
    assert saved_config["model_type"] == "qwen3_vl" and saved_config["architectures"] == [stock_class.__name__]
    assert "auto_map" not in saved_config and not any(k.startswith("vts_") for k in saved_config)

    model, info = ours_class.from_pretrained(tmp_path / "stock", output_loading_info=True)
    assert model.config.model_type == "groundvts_qwen3_vl"
    assert model.config.vts_keep_ratio == 0.5 and model.config.vts_min_tokens_per_frame == 1
    assert info["mismatched_keys"] == set()
    head_only_in_stock = stock_class is Qwen3VLForConditionalGeneration and ours_class is GroundVTSQwen3VLModel
    assert info["unexpected_keys"] == ({"lm_head.weight"} if head_only_in_stock else set())
    vts_prefix = "model.vts." if ours_class is GroundVTSQwen3VLForConditionalGeneration else "vts."
    missing = info["missing_keys"]
    if stock_class is Qwen3VLModel and ours_class is GroundVTSQwen3VLForConditionalGeneration:
        missing = missing - {"lm_head.weight"}  # an inner checkpoint has no head
    assert missing and all(k.startswith(vts_prefix) for k in missing), info
    stock_inner = stock.model if stock_class is Qwen3VLForConditionalGeneration else stock
    loaded_inner = model.model if ours_class is GroundVTSQwen3VLForConditionalGeneration else model
    ours = loaded_inner.state_dict()
    for name, tensor in stock_inner.state_dict().items():
        assert torch.equal(ours[name], tensor), name
