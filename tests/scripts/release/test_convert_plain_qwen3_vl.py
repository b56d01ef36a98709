"""`groundvts convert` on plain Qwen3-VL weights (stock class, config and processor): an untrained GroundVTS-Q3 folder
with our processor that loads through its remote code, keeps every stock tensor and runs `groundvts ground`."""

import json

import torch
from safetensors.torch import load_file
from transformers import Qwen3VLForConditionalGeneration, Qwen3VLProcessor

from groundvts.processing.tiny import build_tiny_qwen3_vl_processor
from groundvts.scripts.cli import convert as convert_cli
from groundvts.scripts.cli import ground as ground_cli
from groundvts.scripts.inference.loading import load_groundvts
from inference_test_utils import tiny_videos
from tiny_models import stock_qwen3_config, tiny_qwen3_config_for


def test_plain_qwen3_vl_becomes_a_groundvts_q3_folder(tmp_path, capsys):
    ours = build_tiny_qwen3_vl_processor()
    torch.manual_seed(0)
    stock = Qwen3VLForConditionalGeneration(stock_qwen3_config(tiny_qwen3_config_for(ours)))
    stock.save_pretrained(tmp_path / "plain")
    Qwen3VLProcessor(image_processor=ours.image_processor, tokenizer=ours.tokenizer,
                     video_processor=ours.video_processor, chat_template=ours.chat_template).save_pretrained(tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["model_type"] == "qwen3_vl"

    assert convert_cli.main([str(tmp_path / "plain"), str(tmp_path / "q3")]) == 0
    config = json.loads((tmp_path / "q3" / "config.json").read_text())
    assert config["model_type"] == "groundvts_qwen3_vl" and config["vts_reduction_dim"] == 512
    converted = load_file(tmp_path / "q3" / "model.safetensors")
    for name, tensor in load_file(tmp_path / "plain" / "model.safetensors").items():
        assert torch.equal(converted[name], tensor), name
    assert {k for k in converted if k.startswith("model.vts.")}  # the new, untrained VTS

    model, processor = load_groundvts(tmp_path / "q3", device="cpu")
    assert type(model).__name__ == "GroundVTSQwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "GroundVTSQwen3VLProcessor"
    capsys.readouterr()
    argv = ["--model", str(tmp_path / "q3"), "--video", str(tiny_videos()["b"]), "--query", "a man walks",
            "--max-new-tokens", "2"]
    assert ground_cli.main(argv) == 0 and "answer:" in capsys.readouterr().out
