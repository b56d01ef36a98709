"""Saving, loading through trust_remote_code in a fresh process, and loading plain Qwen2.5-VL weights."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import (
    GroundVTSQwen2_5_VLForConditionalGeneration,
    GroundVTSQwen2_5_VLModel,
)
from isolated import run_isolated
from tiny_models import SAMPLES_FOR_HUB, collate, stock_qwen_config, tiny_qwen_config, video_sample


def test_save_then_remote_code_load_in_fresh_process(qwen_model, tmp_path):
    folder = tmp_path / "groundvts-tiny"
    qwen_model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "groundvts_qwen2_5_vl"
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageTextToText"}
    for name in (
        "modeling_groundvts_qwen2_5_vl.py",
        "configuration_groundvts_qwen2_5_vl.py",
        "groundvts_mixin.py",
        "vts.py",
        "token_pruning.py",
        "mrope.py",
    ):
        assert (folder / name).is_file(), name

    batch = collate([video_sample(**s) for s in SAMPLES_FOR_HUB], "left")
    with torch.no_grad():
        expected = qwen_model(**batch).logits
    torch.save({"batch": batch, "logits": expected}, tmp_path / "io.pt")

    proc = run_isolated(
        f"""
        import torch
        from transformers import AutoModel, AutoModelForImageTextToText
        folder, io = {str(folder)!r}, torch.load({str(tmp_path / "io.pt")!r})
        model, info = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
        assert type(model).__name__ == "GroundVTSQwen2_5_VLForConditionalGeneration", type(model)
        assert not type(model).__module__.startswith("groundvts"), type(model).__module__
        assert not any(info.values()), info
        with torch.no_grad():
            logits = model.eval()(**io["batch"]).logits
        # Equal up to float rounding: loaded weights sit at other memory alignments, so CPU kernels
        # may sum in another order (~1e-8 here); a wrong or missing weight shows up as >1e-2.
        assert torch.allclose(logits, io["logits"], rtol=0, atol=1e-6), (logits - io["logits"]).abs().max()
        inner, info = AutoModel.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
        assert type(inner).__name__ == "GroundVTSQwen2_5_VLModel", type(inner)
        assert not info["missing_keys"] and info["unexpected_keys"] == {{"lm_head.weight"}}, info  # no head in AutoModel
        assert torch.equal(inner.vts.wv.weight, model.model.vts.wv.weight)
        print("OK")
        """,
        cwd=str(tmp_path),
    )
    assert proc.stdout.strip().endswith("OK")


@pytest.mark.parametrize("stock_class", [Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel])
@pytest.mark.parametrize("ours_class", [GroundVTSQwen2_5_VLForConditionalGeneration, GroundVTSQwen2_5_VLModel])
def test_plain_qwen_weights_load_with_only_vts_new(tmp_path, stock_class, ours_class):
    torch.manual_seed(1)
    stock = stock_class(stock_qwen_config(tiny_qwen_config()))
    stock.save_pretrained(tmp_path / "stock")
    # A genuinely stock checkpoint, as on the Hub: stock model_type, no VTS fields, no remote code, legacy key names.
    saved_config = json.loads((tmp_path / "stock" / "config.json").read_text())
    assert saved_config["model_type"] == "qwen2_5_vl" and saved_config["architectures"] == [stock_class.__name__]
    assert "auto_map" not in saved_config and not any(k.startswith("vts_") for k in saved_config)
    legacy_prefix = "model.layers." if stock_class is Qwen2_5_VLForConditionalGeneration else "language_model.layers."
    assert any(k.startswith(legacy_prefix) for k in load_file(tmp_path / "stock" / "model.safetensors"))

    model, info = ours_class.from_pretrained(tmp_path / "stock", output_loading_info=True)
    assert model.config.model_type == "groundvts_qwen2_5_vl"
    assert info["mismatched_keys"] == set()
    # An inner model has no LM head: the stock outer checkpoint's head is the only thing it may leave unused.
    assert info["unexpected_keys"] == ({"lm_head.weight"} if stock_class is not Qwen2_5_VLModel and ours_class is GroundVTSQwen2_5_VLModel else set())
    vts_prefix = "model.vts." if ours_class is GroundVTSQwen2_5_VLForConditionalGeneration else "vts."
    missing = info["missing_keys"]
    if stock_class is Qwen2_5_VLModel and ours_class is GroundVTSQwen2_5_VLForConditionalGeneration:
        missing = missing - {"lm_head.weight"}  # an inner checkpoint has no head
    assert missing and all(k.startswith(vts_prefix) for k in missing), info
    # Every stock weight arrived, by value.
    stock_inner = stock.model if stock_class is Qwen2_5_VLForConditionalGeneration else stock
    loaded_inner = model.model if ours_class is GroundVTSQwen2_5_VLForConditionalGeneration else model
    ours = loaded_inner.state_dict()
    for name, tensor in stock_inner.state_dict().items():
        assert torch.equal(ours[name], tensor), name
