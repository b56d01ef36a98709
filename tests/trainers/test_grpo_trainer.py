"""Stage 4 (GRPO) on the bundled tiny model and tiny encoded videos: the recipe end to end through `groundvts train`,
what trains, resuming, merging and loading through `trust_remote_code`, the log-probabilities on the pruned and
padded layout, the rewards of the sampled answers, and bad input."""

import json
import logging

import pytest
import torch
from datasets import Dataset

from groundvts.hub_configs import tiny_model_dir
from groundvts.scripts.cli import merge as merge_lora
from groundvts.scripts.cli import train
from groundvts.trainers import GroundVTSGRPOConfig, GroundVTSGRPOTrainer, to_grpo_dataset
from groundvts.trainers.grpo_data import GRPODataError
from groundvts.trainers.grpo_trainer import name_failing_rows
from groundvts.trainers.loading import load_model_and_processor
from groundvts.trainers.rewards import temporal_iou_reward
from groundvts.trainers.stages import parameter_groups
from isolated import run_isolated

SMALL = {"video_fps": 2.0, "video_max_frames": 16, "video_max_pixels": 3136}


def recipe_args(data, out, *extra):
    sets = [
        "model=groundvts-tiny", "data.format=grounding_ft", f"data.path={data}", f"training.output_dir={out}",
        "training.max_steps=2", "training.per_device_train_batch_size=4", "training.gradient_accumulation_steps=1",
        "training.num_generations=4", "training.temperature=2.0", "training.learning_rate=1e-2",
        "training.max_completion_length=12", "training.bf16=false", "training.use_cpu=true",
        "training.activation_checkpointing=false", "training.save_steps=1", "training.logging_steps=1",
        "training.dataloader_num_workers=0", *(f"training.{k}={v}" for k, v in SMALL.items()), *extra,
    ]
    return ["groundvts-q-stage4", *[arg for item in sets for arg in ("--set", item)]]


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory, grounding_jsonl):
    out = tmp_path_factory.mktemp("grpo") / "stage4"
    assert train.main(recipe_args(grounding_jsonl, out)) == 0
    return out


def args_for(tmp_path, **overrides):
    values = dict(output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4, num_generations=4,
                  temperature=2.0, learning_rate=1e-2, max_completion_length=12, use_cpu=True, bf16=False,
                  report_to=[], save_strategy="no", logging_steps=1, beta=0.04, **SMALL)
    values.update(overrides)
    return GroundVTSGRPOConfig(**values)


@pytest.fixture
def tiny():
    return load_model_and_processor(tiny_model_dir())


def test_grpo_prompts_carry_no_answer_and_the_answer_becomes_the_truth(grounding_records):
    rows = to_grpo_dataset(Dataset.from_list(grounding_records))
    for index, row in enumerate(rows):
        assert [turn["role"] for turn in row["prompt"]] == ["user"]
        assert row["window"] == pytest.approx([0.5 * index, 0.5 * index + 1.0])
        assert row["videos"] == grounding_records[index]["videos"]


def test_a_record_without_a_readable_span_is_listed_or_skipped(grounding_records):
    broken = [{**record, "source": f"train.jsonl:{line}"} for line, record in enumerate(grounding_records, 1)]
    broken = json.loads(json.dumps(broken))
    broken[1]["messages"][1]["content"][0]["text"] = "I cannot tell."
    with pytest.raises(GRPODataError, match=r"train.jsonl:2: the answer 'I cannot tell.' names no span"):
        to_grpo_dataset(Dataset.from_list(broken))
    notes = []
    assert len(to_grpo_dataset(Dataset.from_list(broken), "skip", log=notes.append)) == len(broken) - 1
    assert notes and "train.jsonl:2" in notes[0]


def test_stage4_trains_the_lora_adapter_only_by_default(grpo_run):
    from peft import PeftModel

    base, _ = load_model_and_processor(tiny_model_dir())
    reference = {name: p.detach().clone() for name, p in base.named_parameters()}
    model = PeftModel.from_pretrained(base, str(grpo_run))
    groups = parameter_groups(model)
    moved = set()
    for name, param in model.named_parameters():
        if "lora_B" in name:
            moved.add("lora") if param.abs().sum() > 0 else None  # LoRA B starts at zero
            continue
        if "lora_A" in name:
            continue
        plain = name.removeprefix("base_model.model.").replace(".modules_to_save.default", "").replace(".original_module", "").replace(".base_layer", "")
        if not torch.equal(param, reference[plain]):
            moved.add(groups[name])
    assert moved == {"lora"}
    card = (grpo_run / "README.md").read_text()
    assert "GroundVTS stage 4" in card and "GroundVTSGRPOTrainer" in card and "temporal_iou_reward" in card


def test_training_vts_and_projector_is_a_choice(tiny, grounding_records, tmp_path):
    model, processor = tiny
    trainer = GroundVTSGRPOTrainer(model=model, args=args_for(tmp_path, freeze=[]),
                                   train_dataset=to_grpo_dataset(Dataset.from_list(grounding_records)),
                                   processing_class=processor)
    groups = parameter_groups(trainer.model)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    moved = {groups[n] for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)}
    assert "lora" in moved and moved <= {"lora", "vts", "projector"} and moved & {"vts", "projector"}
    # VTS selected its top K while training (no Gumbel draw) and the model's own setting is back afterwards.
    assert trainer.model.get_base_model().config.vts_train_selection == "gumbel"

    # The logged rewards are the rewards of the logged answers' parsed spans.
    windows = {json.dumps(row["prompt"]): row["window"] for row in trainer.train_dataset}
    prompts, completions = list(trainer._logs["prompt"]), list(trainer._logs["completion"])
    expected = temporal_iou_reward(completions, window=[windows[json.dumps(p)] for p in prompts])
    assert list(trainer._logs["rewards"]["temporal_iou_reward"]) == pytest.approx(expected)


def test_a_checkpoint_resumes(grpo_run, grounding_jsonl, tmp_path):
    out = tmp_path / "resumed"
    argv = recipe_args(grounding_jsonl, out, "training.max_steps=2")
    assert train.main([*argv, "--resume", str(grpo_run / "checkpoint-1")]) == 0
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2]


def test_the_adapter_merges_and_loads_through_trust_remote_code(grpo_run, grounding_records, tmp_path):
    merged = tmp_path / "merged"
    assert merge_lora.main(["--base", "groundvts-tiny", "--adapter", str(grpo_run), "--output", str(merged)]) == 0
    code = f"""
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained({str(merged)!r}, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained({str(merged)!r}, trust_remote_code=True)
messages = [{{"role": "user", "content": [{{"type": "video"}}, {{"type": "text", "text": "when does the dog run?"}}]}}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(text=[prompt], videos=[{grounding_records[1]['videos'][0]!r}], return_tensors="pt", fps=2.0)
out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
print("GENERATED", type(model).__name__, out.shape[1] - inputs["input_ids"].shape[1])
"""
    assert "GENERATED GroundVTSQwen2_5_VLForConditionalGeneration 4" in run_isolated(code, cwd=str(tmp_path)).stdout


def padded_logps_equal_one_by_one(model, processor, records, args):
    """TRL left-pads the prompts and right-pads the completions of a batch; each row's completion log-probabilities
    must equal those of the row alone, computed from the model's own logits on the pruned sequence."""
    rows = to_grpo_dataset(Dataset.from_list(records))
    trainer = GroundVTSGRPOTrainer(model=model, args=args, train_dataset=rows, processing_class=processor,
                                   reward_funcs=[length_reward])
    trainer.model.eval()
    trainer._batch_videos = [row["videos"] for row in rows]
    prompt_ids, _, _ = trainer._tokenize_prompts([row["prompt"] for row in rows])
    completions = [[11, 12, 13, 14, 15], [16, 17], [18, 19, 20]][: len(rows)]
    width = max(map(len, prompt_ids))
    pad = processor.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p + c + [pad] * (5 - len(c)) for p, c in zip(prompt_ids, completions)])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * (len(p) + len(c)) + [0] * (5 - len(c))
                         for p, c in zip(prompt_ids, completions)])
    with torch.no_grad():
        batched, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 5, batch_size=len(rows))
        for index, (row, completion) in enumerate(zip(trainer._active_rows, completions)):
            alone = dict(row)
            alone["input_ids"] = torch.cat([row["input_ids"], torch.tensor([completion])], dim=1)
            alone["attention_mask"] = torch.ones_like(alone["input_ids"])
            for key in ("query_mask", "mm_token_type_ids"):
                if key in row:
                    alone[key] = torch.cat([row[key], torch.zeros(1, len(completion), dtype=row[key].dtype)], dim=1)
            logits = trainer.model(**alone, use_cache=False).logits[0, -len(completion) - 1:-1] / trainer.temperature
            expected = logits.log_softmax(-1).gather(-1, torch.tensor(completion)[:, None])[:, 0]
            torch.testing.assert_close(batched[index, : len(completion)], expected, atol=1e-5, rtol=1e-5)
    return prompt_ids


def length_reward(completions, **kwargs):
    """A reward any random model's answers vary on (their length), to test the plumbing on untrained backbones."""
    return [float(len(text)) for text in (completion[-1]["content"] for completion in completions)]


def test_log_probabilities_on_the_padded_layout_equal_one_by_one(tiny, grounding_records, tmp_path):
    model, processor = tiny
    args = args_for(tmp_path, num_generations=3, per_device_train_batch_size=3)
    prompt_ids = padded_logps_equal_one_by_one(model, processor, grounding_records[1:4], args)  # 3, 4 and 5-s videos
    assert len({len(ids) for ids in prompt_ids}) == 3


@pytest.mark.parametrize("backbone", ["qwen3_vl", "internvl"])
def test_every_backbone_samples_scores_and_trains_its_lora(backbone, grounding_records, tmp_path):
    from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration
    from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration
    from groundvts.processing.tiny import build_tiny_internvl_processor, build_tiny_qwen3_vl_processor
    from tiny_models import tiny_internvl_config_for, tiny_qwen3_config_for

    torch.manual_seed(0)
    if backbone == "qwen3_vl":
        processor = build_tiny_qwen3_vl_processor()
        model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config_for(processor))
        video = {}
    else:
        processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)
        model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config_for(processor))
        video = {"video_fps": None, "video_num_frames": 4, "video_max_frames": None, "video_max_pixels": None}
    args = args_for(tmp_path, num_generations=3, per_device_train_batch_size=3, **video)
    padded_logps_equal_one_by_one(model, processor, grounding_records[1:4], args)

    trainer = GroundVTSGRPOTrainer(model=model, args=args_for(tmp_path, **video), processing_class=processor,
                                   train_dataset=to_grpo_dataset(Dataset.from_list(grounding_records)),
                                   reward_funcs=[length_reward])
    groups = parameter_groups(trainer.model)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    moved = {groups[n] for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)}
    assert moved == {"lora"}


def test_prompts_whose_video_is_missing_are_skipped_and_reported(tiny, grounding_records, tmp_path, caplog):
    model, processor = tiny
    rows = to_grpo_dataset(Dataset.from_list(grounding_records)).to_list()
    rows[2]["videos"] = [str(tmp_path / "gone.mp4")]
    with caplog.at_level(logging.WARNING):
        trainer = GroundVTSGRPOTrainer(model=model, args=args_for(tmp_path), train_dataset=Dataset.from_list(rows),
                                       processing_class=processor)
    assert len(trainer.train_dataset) == len(rows) - 1
    assert "gone.mp4" in caplog.text and "1 of 4 GRPO prompts skipped" in caplog.text
    for row in rows:
        row["videos"] = [str(tmp_path / "gone.mp4")]
    with pytest.raises(ValueError, match="None of the 4 GRPO prompts has its video"):
        GroundVTSGRPOTrainer(model=model, args=args_for(tmp_path), train_dataset=Dataset.from_list(rows),
                             processing_class=processor)


def test_a_reward_function_that_raises_names_the_row():
    def picky(completions, qid, **kwargs):
        return [1.0 if q != "q2" else 1 / 0 for q in qid]

    wrapped = name_failing_rows(picky)
    assert wrapped.__name__ == "picky"
    assert wrapped(prompts=["a"], completions=["x"], qid=["q1"]) == [1.0]
    with pytest.raises(ValueError, match=r"`picky` failed on row 2 \(qid q2.*division by zero"):
        wrapped(prompts=["a", "b", "c"], completions=["x", "y", "z"], qid=["q0", "q1", "q2"],
                videos=[["a.mp4"], ["b.mp4"], ["c.mp4"]])


def test_stage4_recipe_refuses_an_adapter(grounding_jsonl, tmp_path, capsys):
    assert train.main(recipe_args(grounding_jsonl, tmp_path / "out", "adapter=some/adapter")) == 2
    assert "Stage 4 starts from a merged stage-3 model" in capsys.readouterr().err


def test_highlight_records_become_clip_truth():
    from groundvts.processing.prompts import build_hd_conversation
    from groundvts.trainers.grpo_data import grpo_row

    record = build_hd_conversation("a dog", [3, 4, 5, 9], [[4, 3, 2], [2, 2, 2], [1, 1, 1], [3, 3, 3]], "v.mp4",
                                   template_index=0)
    row = grpo_row({**record, "task": "hd", "duration": 30.0})
    assert row["relevant_clip_ids"] == [3, 4, 5, 9] and row["window"] is None
    assert [turn["role"] for turn in row["prompt"]] == ["user"]
    with pytest.raises(ValueError, match="needs its `duration`"):
        grpo_row({**record, "task": "hd"})


def test_vllm_is_refused_when_the_config_is_made(tmp_path):
    with pytest.raises(ValueError, match="no VTS path"):
        args_for(tmp_path, use_vllm=True)


def test_the_entropy_bonus_reaches_the_gradient(tiny, grounding_records, tmp_path):
    model, processor = tiny
    trainer = GroundVTSGRPOTrainer(model=model, args=args_for(tmp_path, entropy_coef=0.1), processing_class=processor,
                                   train_dataset=to_grpo_dataset(Dataset.from_list(grounding_records)))
    trainer._batch_videos = [grounding_records[0]["videos"]]
    prompt_ids, _, _ = trainer._tokenize_prompts([to_grpo_dataset(Dataset.from_list(grounding_records[:1]))[0]["prompt"]])
    ids = torch.tensor([prompt_ids[0] + [11, 12, 13]])
    _, entropies, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, torch.ones_like(ids), 3,
                                                                  compute_entropy=True)
    assert entropies.requires_grad
