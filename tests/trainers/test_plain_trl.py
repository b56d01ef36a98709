"""TRL's own `SFTTrainer` with a GroundVTS model and a messages+videos dataset: a message naming the three settings
it needs, and a working run once they are given (the snippet of docs/training.md)."""

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from groundvts.hub_configs import tiny_model_dir
from groundvts.scripts.inference.loading import load_groundvts
from groundvts.trainers import GroundVTSVideoCollator


@pytest.fixture
def tiny(grounding_records):
    model, processor = load_groundvts(tiny_model_dir(), device="cpu")
    return model, processor, Dataset.from_list(grounding_records)


def test_without_the_settings_the_error_names_them(tiny, tmp_path):
    model, processor, dataset = tiny
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, use_cpu=True, report_to=[])
    with pytest.raises(ValueError) as error:
        SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
    message = str(error.value)
    for setting in ("GroundVTSVideoCollator", "remove_unused_columns=False", '"skip_prepare_dataset": True'):
        assert setting in message


def test_with_the_three_settings_plain_sft_trainer_trains(tiny, tmp_path):
    model, processor, dataset = tiny
    args = SFTConfig(
        output_dir=str(tmp_path), max_steps=1, use_cpu=True, report_to=[], per_device_train_batch_size=2,
        remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True}, save_strategy="no",
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=processor,
        data_collator=GroundVTSVideoCollator(processor, {"fps": 2.0}),
    )
    trainer.train()
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert torch.isfinite(torch.tensor(trainer.state.log_history[-1]["train_loss"]))
