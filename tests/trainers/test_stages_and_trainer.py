"""Stage freeze specs, the LoRA placement, the trainer's loss, and resuming a stage from a checkpoint."""

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration
from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration
from groundvts.processing.tiny import build_tiny_internvl_processor, build_tiny_qwen3_vl_processor
from groundvts.trainers import (
    GroundVTSSFTConfig,
    GroundVTSTrainer,
    GroundVTSVideoCollator,
    apply_stage,
    assert_stage,
    lora_config,
    trainable_counts,
)
from tiny_models import tiny_internvl_config_for, tiny_qwen3_config_for, tiny_qwen_config_for


def new_qwen(processor, seed=0):
    torch.manual_seed(seed)
    return GroundVTSQwen2_5_VLForConditionalGeneration(tiny_qwen_config_for(processor))


def config(tmp_path, stage, **overrides):
    values = dict(
        output_dir=str(tmp_path), stage=stage, per_device_train_batch_size=2, max_steps=4, learning_rate=1e-2,
        bf16=False, use_cpu=True, report_to=[], logging_steps=1, save_strategy="no", video_fps=2.0,
        activation_checkpointing=False, dataloader_num_workers=0, seed=0,
    )
    values.update(overrides)
    return GroundVTSSFTConfig(**values)


def test_stage1_spec_freezes_all_but_vts(tiny_processor):
    model = new_qwen(tiny_processor)
    apply_stage(model, 1)
    counts = assert_stage(model, 1)
    assert counts["vts"]["trainable"] == counts["vts"]["total"] > 0
    assert all(c["trainable"] == 0 for g, c in counts.items() if g != "vts")
    model.model.visual.blocks[0].attn.qkv.weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match="vision"):
        assert_stage(model, 1)


def test_stage0_base_trains_every_weight(tmp_path, tiny_processor, grounding_records):
    model = new_qwen(tiny_processor)
    model.config.vts_strategy = "dense"  # a base model sees every token
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = GroundVTSTrainer(model=model, args=config(tmp_path, 0, max_steps=2), processing_class=tiny_processor,
                               train_dataset=Dataset.from_list(grounding_records))
    counts = trainable_counts(trainer.model)
    assert all(c["trainable"] == c["total"] for c in counts.values())
    trainer.train()
    after = trainer.model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("model.visual.blocks.") for k in moved)
    assert any(k.startswith("model.language_model.layers.") for k in moved)


def test_stage0_with_the_tower_frozen_trains_only_the_language_side(tmp_path, tiny_processor, grounding_records):
    model = new_qwen(tiny_processor)
    model.config.vts_strategy = "dense"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = config(tmp_path, 0, max_steps=2, freeze=["vision", "projector"])
    trainer = GroundVTSTrainer(model=model, args=args, processing_class=tiny_processor,
                               train_dataset=Dataset.from_list(grounding_records))
    counts = trainable_counts(trainer.model)
    assert counts["vision"]["trainable"] == counts["projector"]["trainable"] == 0
    assert counts["language_model"]["trainable"] == counts["language_model"]["total"] > 0
    trainer.train()
    after = trainer.model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("model.visual.") for k in moved)
    assert any(k.startswith("model.language_model.layers.") for k in moved)
    # A frozen group that comes back trainable is caught, as for the stage's own spec.
    model.model.visual.merger.mlp[0].weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match="freezing"):
        assert_stage(model, 0, ["vision", "projector"])


def test_freeze_names_are_checked(tmp_path):
    with pytest.raises(ValueError, match="Unknown parameter groups"):
        config(tmp_path, 0, freeze=["tower"])
    with pytest.raises(ValueError, match="nothing to train"):
        config(tmp_path, 1, freeze=["vts"])


def test_stage2_without_lora_is_refused(tiny_processor):
    model = new_qwen(tiny_processor)
    apply_stage(model, 2)
    with pytest.raises(RuntimeError, match="lora"):
        assert_stage(model, 2)


@pytest.mark.parametrize("backbone", ["qwen", "qwen3", "internvl"])
def test_lora_on_llm_attention_only_with_vts_and_projector_saved(tiny_processor, backbone):
    from peft import get_peft_model

    if backbone == "qwen":
        model = new_qwen(tiny_processor)
    elif backbone == "qwen3":
        model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config_for(build_tiny_qwen3_vl_processor()))
    else:
        processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)
        model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config_for(processor))
    peft_model = get_peft_model(model, lora_config(model))
    apply_stage(peft_model, 2)
    counts = assert_stage(peft_model, 2)
    lora_names = [n for n, _ in peft_model.named_parameters() if "lora_" in n]
    layers = model.config.text_config.num_hidden_layers
    assert len(lora_names) == layers * 4 * 2  # q/k/v/o, A and B
    assert all(".language_model.layers." in n and ".self_attn." in n for n in lora_names)
    assert counts["vision"]["trainable"] == 0 and counts["language_model"]["trainable"] == 0
    assert counts["projector"]["trainable"] > 0 and counts["vts"]["trainable"] > 0
    if backbone == "qwen3":  # DeepStack's mergers are projectors too: trained and saved with the adapter
        expected = {"vts", "merger", "deepstack_merger_list.0", "deepstack_merger_list.1"}
        assert set(lora_config(model).modules_to_save) == expected
        trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
        assert any("deepstack_merger_list" in n for n in trainable)
        assert not any(".blocks." in n for n in trainable)


def test_qwen3_stage1_then_stage2_train_their_groups(tmp_path, grounding_records):
    """GroundVTS-Q3 through the trainer with its own processor: stage 1 moves only VTS; stage 2 moves VTS, the
    merger, the DeepStack mergers and LoRA on the LLM attention, never the vision tower or the LLM base weights."""
    processor = build_tiny_qwen3_vl_processor()
    torch.manual_seed(0)
    model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config_for(processor))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = Dataset.from_list(grounding_records)
    trainer = GroundVTSTrainer(model=model, args=config(tmp_path / "s1", 1, max_steps=2), processing_class=processor,
                               train_dataset=data)
    trainer.train()
    moved = {k for k, v in trainer.model.state_dict().items() if not torch.equal(before[k], v)}
    assert moved and all(k.startswith("model.vts.") for k in moved)

    trainer = GroundVTSTrainer(model=model, args=config(tmp_path / "s2", 2, max_steps=2), processing_class=processor,
                               train_dataset=data)
    trainer.train()
    merged = trainer.model.merge_and_unload().state_dict()
    moved = {k for k in before if not torch.equal(before[k], merged[k])}
    assert any("deepstack_merger_list" in k for k in moved) and any("visual.merger." in k for k in moved)
    assert any(".self_attn." in k for k in moved)
    allowed = ("model.vts.", "model.visual.merger.", "model.visual.deepstack_merger_list.")
    assert all(k.startswith(allowed) or ".self_attn." in k for k in moved)


def test_loss_is_the_models_own_and_decreases_on_a_repeated_batch(tmp_path, tiny_processor, grounding_records):
    dataset = Dataset.from_list(grounding_records[:2] * 8)
    model = new_qwen(tiny_processor)
    trainer = GroundVTSTrainer(model=model, args=config(tmp_path, 2, max_steps=8, seed=1), train_dataset=dataset,
                               processing_class=tiny_processor)
    # compute_loss is the outer forward's loss (labels after removed tokens ignored), not TRL's fused head.
    batch = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0})(grounding_records[:2])
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.model(**batch).loss
        actual = trainer.compute_loss(trainer.model, dict(batch))
    torch.testing.assert_close(actual, expected)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 8 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.05, losses
    counts = trainable_counts(trainer.model)
    assert counts["vision"]["trainable"] == 0


def test_stage1_refuses_an_adapter(tmp_path, tiny_processor, grounding_records):
    from peft import get_peft_model

    model = new_qwen(tiny_processor)
    peft_model = get_peft_model(model, lora_config(model))
    with pytest.raises(ValueError, match="Stage 1"):
        GroundVTSTrainer(model=peft_model, args=config(tmp_path, 1), train_dataset=Dataset.from_list(grounding_records),
                         processing_class=tiny_processor)


def test_resume_within_a_stage_matches_an_uninterrupted_run(tmp_path, tiny_processor, grounding_records):
    dataset = Dataset.from_list(grounding_records)
    common = dict(max_steps=4, save_strategy="steps", save_steps=2, learning_rate=5e-3)

    def run(out, resume=None, seed=0):
        trainer = GroundVTSTrainer(model=new_qwen(tiny_processor, seed), args=config(out, 1, **common), train_dataset=dataset,
                                   processing_class=tiny_processor)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    class StopAfterTwoSteps(TrainerCallback):  # a run killed after its step-2 checkpoint
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = state.global_step == 2

    full = run(tmp_path / "full")
    interrupted = tmp_path / "interrupted"
    first = GroundVTSTrainer(model=new_qwen(tiny_processor), args=config(interrupted, 1, **common), train_dataset=dataset,
                             processing_class=tiny_processor, callbacks=[StopAfterTwoSteps()])
    first.train()
    assert first.state.global_step == 2 and (interrupted / "checkpoint-2").is_dir()
    # The trainer picks up checkpoint-2 with optimizer, scheduler and RNG state.
    # A differently initialised model: only the checkpoint's weights can make it end like the full run.
    resumed = run(interrupted, resume=str(interrupted / "checkpoint-2"), seed=1)
    assert resumed.state.global_step == 4
    full_vts = full.model.model.vts.state_dict()
    for key, value in resumed.model.model.vts.state_dict().items():
        torch.testing.assert_close(value, full_vts[key], atol=1e-6, rtol=1e-5)


def test_internvl_stage2_trains_lora_vts_and_projector(tmp_path, grounding_records):
    processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(tiny_internvl_config_for(processor))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = config(tmp_path, 2, max_steps=2, video_fps=None, video_num_frames=4)
    trainer = GroundVTSTrainer(model=model, args=args, train_dataset=Dataset.from_list(grounding_records),
                               processing_class=processor)
    trainer.train()
    merged = trainer.model.merge_and_unload().state_dict()
    moved = {k for k in before if not torch.equal(before[k], merged[k])}
    assert any(k.startswith("model.vts.") for k in moved) and any("multi_modal_projector" in k for k in moved)
    assert any(".self_attn." in k for k in moved)
    assert not any("vision_tower" in k for k in moved)
    assert all(k.startswith(("model.vts.", "model.multi_modal_projector.")) or ".self_attn." in k for k in moved)


def test_plain_sft_config_trains_as_stage_3(tmp_path, tiny_processor, grounding_records):
    from trl import SFTConfig

    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, bf16=False, use_cpu=True,
                     report_to=[], save_strategy="no", activation_checkpointing=False)
    trainer = GroundVTSTrainer(model=new_qwen(tiny_processor), args=args, processing_class=tiny_processor,
                               train_dataset=Dataset.from_list(grounding_records))
    assert isinstance(trainer.args, GroundVTSSFTConfig) and trainer.args.stage == 3
    assert trainer.args.dataset_kwargs["skip_prepare_dataset"] and not trainer.args.remove_unused_columns
    assert trainable_counts(trainer.model)["lora"]["trainable"] > 0
    trainer.train()
    with pytest.raises(TypeError, match="GroundVTSSFTConfig"):
        GroundVTSTrainer(model=new_qwen(tiny_processor), args={"lr": 1}, processing_class=tiny_processor,
                         train_dataset=Dataset.from_list(grounding_records))


def test_dense_groundvts_trains_exactly_like_stock_qwen(tiny_processor, grounding_records):
    """With VTS off, a training step (loss and every gradient) is the stock Qwen2.5-VL one given the pretrained
    M-RoPE positions (modeling/mrope.py; stock 5.23 numbers text after a video differently): the GroundVTS path
    loses no video content."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tiny_models import stock_qwen_config

    batch = GroundVTSVideoCollator(tiny_processor, {"fps": 2.0})(grounding_records[:2])
    torch.manual_seed(0)
    ours = GroundVTSQwen2_5_VLForConditionalGeneration(tiny_qwen_config_for(tiny_processor, vts_strategy="dense")).train()
    stock = Qwen2_5_VLForConditionalGeneration(stock_qwen_config(ours.config)).train()
    stock.load_state_dict({k: v for k, v in ours.state_dict().items() if ".vts." not in k}, strict=True)
    ours_loss = ours(**batch).loss
    positions, _ = ours.model.get_rope_index(
        batch["input_ids"], batch["mm_token_type_ids"], video_grid_thw=batch["video_grid_thw"],
        second_per_grid_ts=batch["second_per_grid_ts"], attention_mask=batch["attention_mask"],
    )
    stock_loss = stock(**{k: v for k, v in batch.items() if k != "query_mask"}, position_ids=positions).loss
    ours_loss.backward()
    stock_loss.backward()
    torch.testing.assert_close(ours_loss, stock_loss, rtol=0, atol=1e-6)
    ours_params = dict(ours.named_parameters())
    assert ours_params["model.visual.patch_embed.proj.weight"].grad.abs().sum() > 0  # the vision tower learns
    for name, param in stock.named_parameters():
        torch.testing.assert_close(ours_params[name].grad, param.grad, rtol=0, atol=1e-6, msg=name)
