"""Conversion of a tiny checkpoint written in the official GroundVTS-I (InternVL, `vts_internvl_3`) layout."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import InternVLForConditionalGeneration

from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration
from groundvts.scripts.cli.convert import main
from groundvts.scripts.release.convert import convert_checkpoint
from tiny_models import collate_internvl, internvl_sample, stock_internvl_config, tiny_internvl_config

D, DR = 32, 8  # LLM hidden size (= projector output = official max(vision, LLM) width), VTS_hidden_size

# transformers 4.56 (the official pin) may have written either the legacy names or the 4.52+ module names.
NEW_STYLE = {"language_model.model.": "model.language_model.", "language_model.lm_head.": "lm_head.",
             "vision_tower.": "model.vision_tower.", "multi_modal_projector.": "model.multi_modal_projector."}


def official_checkpoint(folder, key_style):
    """Stock InternVL weights + `model.vts_module.*` + an official config.json (model_type vts_internvl_3)."""
    torch.manual_seed(3)
    ours = tiny_internvl_config(tie_word_embeddings=False)  # untied, like InternVL3.5-8B
    stock = InternVLForConditionalGeneration(stock_internvl_config(ours))
    stock.save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    assert "language_model.model.layers.0.self_attn.q_proj.weight" in weights  # legacy names
    if key_style == "module_names":
        renamed = {}
        for key, tensor in weights.items():
            old = next(o for o in NEW_STYLE if key.startswith(o))
            renamed[NEW_STYLE[old] + key[len(old):]] = tensor
        weights = renamed
    vts = {
        "model.vts_module.Wf.weight": torch.randn(DR, D),
        "model.vts_module.Wq.weight": torch.randn(DR, D),
        "model.vts_module.post_mlp.0.weight": torch.randn(D, D),
        "model.vts_module.post_mlp.0.bias": torch.randn(D),
        "model.vts_module.post_mlp.2.weight": torch.randn(D, D),
        "model.vts_module.post_mlp.2.bias": torch.randn(D),
    }
    save_file({**weights, **vts}, folder / "model.safetensors", metadata={"format": "pt"})
    # transformers 4.56-style nested config: rope_theta / rope_scaling in text_config, VTS_* at the top.
    config = {k: v for k, v in ours.to_dict().items() if not k.startswith("vts_")}
    text = config["text_config"]
    text.pop("rope_parameters")
    text.update(rope_theta=10000.0, rope_scaling=None)
    config.update(
        model_type="vts_internvl_3", architectures=["VTS_InternVL_3ForConditionalGeneration"],
        VTS_hidden_size=DR, VTS_token_ratio=0.5, VTS_temp=0.7,
    )
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 4096}))
    return stock, vts


@pytest.mark.parametrize("key_style", ["legacy", "module_names"])
def test_official_internvl_checkpoint_converts(tmp_path, key_style):
    stock, vts = official_checkpoint(tmp_path / "official", key_style)
    out = convert_checkpoint(tmp_path / "official", tmp_path / "ours")
    model, info = GroundVTSInternVLForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_type"] == "groundvts_internvl" and "AutoModel" in saved["auto_map"]
    assert (out / "modeling_groundvts_internvl.py").is_file() and (out / "tokenizer_config.json").is_file()
    config = model.config
    assert (config.vts_reduction_dim, config.vts_keep_ratio) == (DR, 0.5)
    assert config.vts_temperature == config.vts_weight_temperature == 0.7
    assert (config.vts_query_pooling, config.vts_train_selection) == ("prompt", "topk")
    assert config.text_config.rope_parameters["rope_theta"] == 10000.0 and config.tie_word_embeddings is False
    assert torch.equal(model.model.vts.wv.weight, vts["model.vts_module.Wf.weight"])
    assert torch.equal(model.model.vts.wq.weight, vts["model.vts_module.Wq.weight"])
    assert torch.equal(model.model.vts.mlp[2].bias, vts["model.vts_module.post_mlp.2.bias"])
    ours = model.state_dict()
    for name, tensor in stock.state_dict().items():
        assert torch.equal(ours[name], tensor), name

    batch = collate_internvl([internvl_sample(prefix=2, frames=3, question=3, seed=0)])
    model.eval()
    with torch.no_grad():
        # VTS runs with the official settings and prunes to ceil(rho * N) video tokens.
        assert int(model(**batch).token_keep[batch["mm_token_type_ids"] == 2].sum()) == 6
        # With sampling off, the converted model is exactly the official base model.
        model.config.vts_strategy = "dense"
        assert torch.allclose(model(**batch).logits, stock.eval()(**batch).logits, atol=1e-5)


def test_internvl_without_vts_weights_is_a_clear_error(tmp_path, capsys):
    official_checkpoint(tmp_path / "official", "legacy")
    weights = load_file(tmp_path / "official" / "model.safetensors")
    weights = {k: v for k, v in weights.items() if not k.startswith("model.vts_module.")}
    save_file(weights, tmp_path / "official" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"model\.vts_module\."):
        convert_checkpoint(tmp_path / "official", tmp_path / "ours")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "llava"}))
    assert main([str(tmp_path / "other"), str(tmp_path / "out")]) == 2
    assert "vts_internvl_3" in capsys.readouterr().err
    # Plain InternVL is accepted (a new VTS), but not without weights and processor files.
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text(json.dumps({"model_type": "internvl"}))
    assert main([str(tmp_path / "plain"), str(tmp_path / "out")]) == 2
    assert "GroundVTSInternVLProcessor" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_internvl_vts_of_another_width_is_a_clear_error(tmp_path, capsys):
    """An official VTS built at a width GroundVTS-I does not use (max(vision, LLM) > LLM) cannot load silently."""
    official_checkpoint(tmp_path / "official", "legacy")
    weights = load_file(tmp_path / "official" / "model.safetensors")
    weights["model.vts_module.Wf.weight"] = torch.randn(DR, D + 8)
    save_file(weights, tmp_path / "official" / "model.safetensors", metadata={"format": "pt"})
    assert main([str(tmp_path / "official"), str(tmp_path / "ours")]) == 2
    err = capsys.readouterr().err
    assert "do not fit GroundVTSInternVLForConditionalGeneration" in err and "Traceback" not in err


def test_output_folder_must_differ_from_the_input(tmp_path, capsys):
    official_checkpoint(tmp_path / "official", "legacy")
    before = (tmp_path / "official" / "model.safetensors").read_bytes()
    assert main([str(tmp_path / "official"), str(tmp_path / "official")]) == 2
    assert "must differ" in capsys.readouterr().err
    assert (tmp_path / "official" / "model.safetensors").read_bytes() == before
