"""Saving, loading through trust_remote_code in a fresh process, and loading plain Qwen2.5-VL weights."""

import json

import torch
from transformers import Qwen2_5_VLForConditionalGeneration

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from isolated import run_isolated
from tiny_models import SAMPLES_FOR_HUB, collate, video_sample


def test_save_then_remote_code_load_in_fresh_process(qwen_model, tmp_path):
    folder = tmp_path / "groundvts-tiny"
    qwen_model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "groundvts_qwen2_5_vl"
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageTextToText"}
    for name in ("modeling_groundvts_qwen2_5_vl.py", "configuration_groundvts_qwen2_5_vl.py", "vts.py", "token_pruning.py"):
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


def test_plain_qwen_weights_load_with_only_vts_new(tmp_path):
    from tiny_models import tiny_qwen_config
    from transformers import Qwen2_5_VLConfig

    torch.manual_seed(1)
    ours_config = tiny_qwen_config()
    stock_config = Qwen2_5_VLConfig(**{k: v for k, v in ours_config.to_dict().items() if not k.startswith("vts_")})
    stock = Qwen2_5_VLForConditionalGeneration(stock_config)
    stock.save_pretrained(tmp_path / "stock")
    model, info = GroundVTSQwen2_5_VLForConditionalGeneration.from_pretrained(
        tmp_path / "stock", output_loading_info=True
    )
    assert model.config.model_type == "groundvts_qwen2_5_vl"
    assert info["unexpected_keys"] == set() and info["mismatched_keys"] == set()
    assert info["missing_keys"] and all(k.startswith("model.vts.") for k in info["missing_keys"]), info
    ours = model.state_dict()
    for name, tensor in stock.state_dict().items():
        assert torch.equal(ours[name], tensor), name
