"""GroundVTS-I: saving, loading through trust_remote_code in a fresh process, loading plain InternVL weights,
and the four inner/outer load directions."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLModel

from groundvts.modeling.modeling_groundvts_internvl import (
    GroundVTSInternVLForConditionalGeneration,
    GroundVTSInternVLModel,
)
from isolated import run_isolated
from tiny_models import (
    INTERNVL_SAMPLES_FOR_HUB,
    collate_internvl,
    internvl_sample,
    spread_vts_scores,
    stock_internvl_config,
    tiny_internvl_config,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config()).eval()
    spread_vts_scores(model)
    return model


def test_save_then_remote_code_load_in_fresh_process(model, tmp_path):
    folder = tmp_path / "groundvts-i-tiny"
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "groundvts_internvl"
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageTextToText"}
    assert config["auto_map"]["AutoModel"] == "modeling_groundvts_internvl.GroundVTSInternVLModel"
    for name in (
        "modeling_groundvts_internvl.py",
        "configuration_groundvts_internvl.py",
        "groundvts_mixin.py",
        "vts.py",
        "token_pruning.py",
    ):
        assert (folder / name).is_file(), name

    batch = collate_internvl([internvl_sample(**s) for s in INTERNVL_SAMPLES_FOR_HUB], "left")
    with torch.no_grad():
        expected = model(**batch).logits
        generated = model.generate(**batch, max_new_tokens=3, do_sample=False)
    torch.save({"batch": batch, "logits": expected, "generated": generated}, tmp_path / "io.pt")

    proc = run_isolated(
        f"""
        import torch
        from transformers import AutoModel, AutoModelForImageTextToText
        folder, io = {str(folder)!r}, torch.load({str(tmp_path / "io.pt")!r})
        model, info = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
        assert type(model).__name__ == "GroundVTSInternVLForConditionalGeneration", type(model)
        assert not type(model).__module__.startswith("groundvts"), type(model).__module__
        assert not any(info.values()), info
        model.eval()
        with torch.no_grad():
            out = model(**io["batch"])
            generated = model.generate(**io["batch"], max_new_tokens=3, do_sample=False)
        assert out.token_keep is not None and not out.token_keep.all()  # VTS ran in the remote code
        # Equal up to float rounding (other memory alignment, other CPU summation order); a wrong or missing
        # weight shows up as >1e-2.
        assert torch.allclose(out.logits, io["logits"], rtol=0, atol=1e-6), (out.logits - io["logits"]).abs().max()
        assert torch.equal(generated, io["generated"]), (generated, io["generated"])
        inner, info = AutoModel.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
        assert type(inner).__name__ == "GroundVTSInternVLModel", type(inner)
        assert not info["missing_keys"] and not info["unexpected_keys"], info  # tied head: nothing extra saved
        assert torch.equal(inner.vts.wv.weight, model.model.vts.wv.weight)
        print("OK")
        """,
        cwd=str(tmp_path),
    )
    assert proc.stdout.strip().endswith("OK")


@pytest.mark.parametrize(
    "stock_class, tied",
    [(InternVLForConditionalGeneration, True), (InternVLForConditionalGeneration, False), (InternVLModel, True)],
)
@pytest.mark.parametrize("ours_class", [GroundVTSInternVLForConditionalGeneration, GroundVTSInternVLModel])
def test_plain_internvl_weights_load_with_only_vts_new(tmp_path, stock_class, tied, ours_class):
    torch.manual_seed(1)
    stock = stock_class(stock_internvl_config(tiny_internvl_config(tie_word_embeddings=tied)))
    stock.save_pretrained(tmp_path / "stock")
    # A genuinely stock checkpoint, as on the Hub: stock model_type, no VTS fields, no remote code.
    saved_config = json.loads((tmp_path / "stock" / "config.json").read_text())
    assert type(stock.config) is InternVLConfig and saved_config["model_type"] == "internvl"
    assert saved_config["architectures"] == [stock_class.__name__] and "auto_map" not in saved_config
    assert not any(k.startswith("vts_") for k in saved_config)
    saved = load_file(tmp_path / "stock" / "model.safetensors")
    assert any(k.startswith("language_model.model.layers.") for k in saved)  # legacy names, as on the Hub
    loaded, info = ours_class.from_pretrained(tmp_path / "stock", output_loading_info=True)
    assert loaded.config.model_type == "groundvts_internvl"
    # An inner model has no LM head: an untied head in the checkpoint is the only thing it may leave unused.
    assert all("lm_head" in k for k in info["unexpected_keys"]) and info["mismatched_keys"] == set()
    assert info["unexpected_keys"] == set() or (ours_class is GroundVTSInternVLModel and not tied)
    vts_prefix = "model.vts." if ours_class is GroundVTSInternVLForConditionalGeneration else "vts."
    assert info["missing_keys"] and all(k.startswith(vts_prefix) for k in info["missing_keys"]), info
    # Every stock weight arrived, by value.
    stock_inner = stock.model if stock_class is InternVLForConditionalGeneration else stock
    loaded_inner = loaded.model if ours_class is GroundVTSInternVLForConditionalGeneration else loaded
    ours = loaded_inner.state_dict()
    for name, tensor in stock_inner.state_dict().items():
        assert torch.equal(ours[name], tensor), name


@pytest.mark.parametrize("source", ["outer", "inner"])
@pytest.mark.parametrize("target", ["outer", "inner"])
def test_groundvts_weights_load_in_all_four_directions(model, tmp_path, source, target):
    classes = {"outer": GroundVTSInternVLForConditionalGeneration, "inner": GroundVTSInternVLModel}
    saved = model if source == "outer" else model.model
    saved.save_pretrained(tmp_path / source)
    loaded, info = classes[target].from_pretrained(tmp_path / source, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    loaded_inner = loaded if target == "inner" else loaded.model
    for name, tensor in model.model.state_dict().items():
        assert torch.equal(loaded_inner.state_dict()[name], tensor), name
