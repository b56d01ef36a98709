"""`groundvts convert` on plain Qwen2.5-VL / InternVL3.5-HF weights, and GroundVTS folders without our processor.

Plain weights become an untrained GroundVTS folder with our processor: it loads through trust_remote_code, keeps
every stock tensor bit for bit, equals the stock model with sampling off, and runs `groundvts ground`. A GroundVTS
folder with a stock processor (or none) is refused with the fix, and `groundvts convert` applies that fix.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
)

from groundvts.processing.tiny import build_tiny_internvl_processor, build_tiny_qwen2_5_vl_processor
from groundvts.scripts import cli
from groundvts.scripts.inference.loading import NotGroundVTSModelError, load_groundvts
from inference_test_utils import tiny_internvl_folder, tiny_model_folder, tiny_videos
from tiny_models import stock_internvl_config, stock_qwen_config, tiny_internvl_config_for, tiny_qwen_config_for

README = Path(__file__).resolve().parents[3] / "README.md"
VTS_KEYS = {f"model.vts.{name}" for name in ("wv.weight", "wq.weight", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias")}
# backbone -> (stock model_type, GroundVTS name, family default D_r, stage-1 recipe, our processor class)
FAMILIES = {
    "q": ("qwen2_5_vl", "GroundVTS-Q", 512, "groundvts-q-stage1", "GroundVTSQwen2_5_VLProcessor"),
    "i": ("internvl", "GroundVTS-I", 128, "groundvts-i-stage1", "GroundVTSInternVLProcessor"),
}
QUERY = "a person opens the door"


def stock_processor(backbone: str, ours=None):
    """The stock transformers processor with the tiny processor's parts: what a plain Hub repo ships."""
    if backbone == "q":
        ours = ours or build_tiny_qwen2_5_vl_processor()
        return Qwen2_5_VLProcessor(image_processor=ours.image_processor, tokenizer=ours.tokenizer,
                                   video_processor=ours.video_processor, chat_template=ours.chat_template)
    ours = ours or build_tiny_internvl_processor()
    return InternVLProcessor(image_processor=ours.image_processor, tokenizer=ours.tokenizer,
                             video_processor=ours.video_processor, image_seq_length=ours.image_seq_length,
                             chat_template=ours.chat_template)


def save_stock(backbone: str, folder: Path):
    """A tiny stock checkpoint (stock class, stock config, stock processor) in `folder`; returns the model."""
    torch.manual_seed(0)
    if backbone == "q":
        ours = build_tiny_qwen2_5_vl_processor()
        model = Qwen2_5_VLForConditionalGeneration(stock_qwen_config(tiny_qwen_config_for(ours)))
    else:
        ours = build_tiny_internvl_processor()
        model = InternVLForConditionalGeneration(stock_internvl_config(tiny_internvl_config_for(ours)))
    model.save_pretrained(folder)
    stock_processor(backbone, ours).save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["model_type"] == FAMILIES[backbone][0]
    assert json.loads((folder / "processor_config.json").read_text())["processor_class"] == type(stock_processor(backbone)).__name__
    return model.eval()


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def ground_argv(model: Path) -> list[str]:
    return ["ground", "--model", str(model), "--video", str(tiny_videos()["a"]), "--query", QUERY, "--max-new-tokens", "4"]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module", params=["q", "i"])
def converted(request, tmp_path_factory):
    backbone = request.param
    root = tmp_path_factory.mktemp(f"plain-{backbone}")
    stock = save_stock(backbone, root / "stock")
    code, out, err = run_cli(["convert", str(root / "stock"), str(root / "groundvts")])
    assert code == 0, err
    return backbone, stock, root / "stock", root / "groundvts", out


def test_convert_reports_an_untrained_vts(converted):
    backbone, _, _, out_dir, report = converted
    _, name, reduction_dim, recipe, processor_class = FAMILIES[backbone]
    assert f"-> {name}" in report
    assert f"VTS weights initialised, untrained (vts_reduction_dim {reduction_dim}, vts_keep_ratio 0.5)" in report
    assert f"groundvts train {recipe} --set model={out_dir}" in report
    assert f"processor: {processor_class}" in report


def test_converted_folder_loads_through_remote_code_with_stock_weights_unchanged(converted):
    backbone, stock, stock_dir, out_dir, _ = converted
    _, _, reduction_dim, _, processor_class = FAMILIES[backbone]
    model, info = AutoModelForImageTextToText.from_pretrained(out_dir, trust_remote_code=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    assert type(model).__module__.startswith("transformers_modules.")  # the code saved with the weights
    assert model.config.vts_reduction_dim == reduction_dim  # the family default, as in hub_configs/
    hidden = model.config.text_config.hidden_size
    assert model.model.vts.wv.weight.shape == (reduction_dim, hidden)
    processor = AutoProcessor.from_pretrained(out_dir, trust_remote_code=True)
    assert type(processor).__name__ == processor_class and type(processor).__module__.startswith("transformers_modules.")

    # On disk: exactly the stock tensors (same names, dtypes, bits) plus the six VTS tensors.
    before, after = load_file(stock_dir / "model.safetensors"), load_file(out_dir / "model.safetensors")
    assert set(after) == set(before) | VTS_KEYS
    for key, tensor in before.items():
        assert after[key].dtype == tensor.dtype and torch.equal(after[key], tensor), key
    # VTS is freshly initialised by the model's init rule: small random weights, zero biases (not torch.empty).
    for key in VTS_KEYS:
        tensor = after[key]
        assert torch.isfinite(tensor).all(), key
        if key.endswith("bias"):
            assert not tensor.any(), key
        else:
            assert 0.005 < float(tensor.std()) < 0.1, key


def test_dense_converted_model_equals_the_stock_model(converted):
    backbone, stock, _, out_dir, _ = converted
    model = AutoModelForImageTextToText.from_pretrained(out_dir, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(out_dir, trust_remote_code=True)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUERY}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], videos=[str(tiny_videos()["a"])], return_tensors="pt")
    model.config.vts_strategy = "dense"
    with torch.no_grad():
        ours = model(**inputs).logits
        stock_inputs = {k: v for k, v in inputs.items() if k not in ("query_mask", "video_num_frames")}
        if backbone == "q":
            # Same positions for both: ours follow the pretrained M-RoPE rule after a video, stock 5.23's do not
            # (field notes 4.2); every other computation must be the stock model's.
            positions, _ = model.model.get_rope_index(
                inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
                second_per_grid_ts=inputs["second_per_grid_ts"], attention_mask=inputs["attention_mask"],
            )
            stock_inputs["position_ids"] = positions
        theirs = stock(**stock_inputs).logits
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-5)
    with torch.no_grad():  # and sampling on really removes tokens: this is not a stock model in disguise
        model.config.vts_strategy = "token"
        assert not bool(model(**inputs).token_keep.all())


def test_ground_runs_on_the_converted_folder(converted):
    _, _, _, out_dir, _ = converted
    code, out, err = run_cli(ground_argv(out_dir))
    assert code == 0, err
    assert "kept" in out  # the VTS summary line


def readme_plain_weights_snippet() -> str:
    """The Python block that follows "Start from plain Qwen2.5-VL" in the README."""
    text = README.read_text()
    start = text.index("Start from plain Qwen2.5-VL")
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, "README: no python block after 'Start from plain Qwen2.5-VL'"
    return match.group(1)


def test_readme_plain_weights_snippet_makes_a_folder_ground_runs(tmp_path, monkeypatch):
    save_stock("q", tmp_path / "stock")
    snippet = readme_plain_weights_snippet()
    assert '"Qwen/Qwen2.5-VL-7B-Instruct"' in snippet and '"groundvts-q"' in snippet
    monkeypatch.chdir(tmp_path)  # the snippet writes ./groundvts-q
    exec(snippet.replace('"Qwen/Qwen2.5-VL-7B-Instruct"', repr(str(tmp_path / "stock"))), {})
    code, out, err = run_cli(ground_argv(tmp_path / "groundvts-q"))
    assert code == 0, err
    assert "span:" in out


def groundvts_folder_with_stock_processor(backbone: str, folder: Path) -> Path:
    """A GroundVTS checkpoint whose processor files are the stock transformers processor's."""
    shutil.copytree(tiny_model_folder() if backbone == "q" else tiny_internvl_folder(), folder)
    (folder / "processor_config.json").unlink()
    stock_processor(backbone).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("backbone", ["q", "i"])
def test_groundvts_folder_with_a_stock_processor_is_refused_with_the_fix(tmp_path, backbone):
    folder = groundvts_folder_with_stock_processor(backbone, tmp_path / "model")
    stock_name, ours_name = type(stock_processor(backbone)).__name__, FAMILIES[backbone][4]
    with pytest.raises(NotGroundVTSModelError, match=rf"{stock_name} processor.*needs {ours_name}"):
        load_groundvts(folder)
    code, out, err = run_cli(ground_argv(folder))  # a traceback escaping would fail the test here
    assert code == 2 and "Traceback" not in err
    [line] = error_lines(err)
    assert f"groundvts convert {folder} OUTPUT_DIR`" in line and ours_name in line

    # The fix the message names: same weights, our processor; then grounding runs.
    code, out, err = run_cli(["convert", str(folder), str(tmp_path / "fixed")])
    assert code == 0, err
    assert "weights: unchanged" in out and "initialised" not in out
    before, after = load_file(folder / "model.safetensors"), load_file(tmp_path / "fixed" / "model.safetensors")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    code, out, err = run_cli(ground_argv(tmp_path / "fixed"))
    assert code == 0, err


def test_groundvts_folder_without_a_processor_is_refused_with_the_fix(tmp_path):
    """What the old README snippet produced: only the model was saved."""
    folder = tmp_path / "model-only"
    folder.mkdir()
    for path in tiny_model_folder().iterdir():
        if path.name in ("config.json", "generation_config.json", "model.safetensors") or path.name.startswith("modeling_"):
            shutil.copy2(path, folder / path.name)
    save_stock("q", tmp_path / "stock")
    code, _, err = run_cli(ground_argv(folder))
    assert code == 2 and "Traceback" not in err
    [line] = error_lines(err)
    assert "no loadable processor" in line and "--processor Qwen/Qwen2.5-VL-7B-Instruct" in line

    code, out, err = run_cli(["convert", str(folder), str(tmp_path / "fixed"), "--processor", str(tmp_path / "stock")])
    assert code == 0, err
    assert "processor: GroundVTSQwen2_5_VLProcessor" in out
    assert run_cli(ground_argv(tmp_path / "fixed"))[0] == 0


def test_convert_refuses_bad_sources_and_outputs(tmp_path):
    save_stock("q", tmp_path / "stock")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("x")
    cases = [
        (["nobody/no-such-model", str(tmp_path / "out")], "nobody/no-such-model"),  # offline, not cached
        ([str(tmp_path / "stock"), str(tmp_path / "stock")], "must differ"),
        ([str(tmp_path / "stock"), str(tmp_path / "used")], "not an empty folder"),
        ([str(tmp_path / "stock"), str(tmp_path / "out"), "--processor", str(tmp_path / "nowhere")], "not found"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(["convert", *argv])
        assert code == 2 and "Traceback" not in err, argv
        [line] = error_lines(err)
        assert message in line, (argv, line)
    assert (tmp_path / "used" / "keep.txt").read_text() == "x" and not (tmp_path / "out").exists()
