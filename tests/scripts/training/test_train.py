"""`groundvts train` recipes and errors (the training itself is covered in tests/trainers)."""

import json

import pytest
import yaml

from groundvts.scripts.cli import merge as merge_lora
from groundvts.scripts.cli import train as train_cli
from groundvts.scripts.training import recipe as train

# Paper Table 13: (learning rate, epochs) per stage; every stage per-device batch 2 x grad-acc 4, AdamW.
TABLE_13 = {1: (1e-5, 1), 2: (2e-4, 2), 3: (1e-4, 3)}


@pytest.mark.parametrize("backbone", ["q", "q3", "i"])
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_bundled_recipes_carry_table_13(backbone, stage):
    # use_cpu: this machine has no GPU, and bf16 without one needs it.
    recipe = train.load_recipe(f"groundvts-{backbone}-stage{stage}", ["training.use_cpu=true"])
    args = train.training_config(recipe)
    assert args.stage == stage
    assert (args.learning_rate, args.num_train_epochs) == TABLE_13[stage]
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 4)
    assert args.optim == "adamw_torch" and (args.adam_beta1, args.adam_beta2) == (0.9, 0.999)
    assert args.bf16 and args.activation_checkpointing
    assert args.dataset_kwargs["skip_prepare_dataset"] and not args.remove_unused_columns and args.max_length is None
    if backbone in ("q", "q3"):
        assert args.video_kwargs() == {"fps": 2.0, "max_frames": 128, "max_pixels": 16384}
    else:
        assert args.video_kwargs() == {"num_frames": 16}
    if stage > 1:
        assert (args.lora_r, args.lora_alpha, args.lora_dropout) == (8, 16, 0.05)
    assert recipe["data"]["format"] == ("grounding_ft" if stage == 3 else "llava_video")
    assert bool(recipe.get("adapter")) == (stage == 3)


def test_distributed_configs_point_at_bundled_deepspeed_files():
    for stage in (2, 3):
        config = json.loads((train.RECIPES_DIR / "deepspeed" / f"zero{stage}.json").read_text())
        assert config["zero_optimization"]["stage"] == stage
        launcher = yaml.safe_load((train.RECIPES_DIR / "accelerate" / f"zero{stage}.yaml").read_text())
        assert launcher["deepspeed_config"]["deepspeed_config_file"].endswith(f"deepspeed/zero{stage}.json")
    recipe = train.load_recipe("groundvts-q-stage2", ["training.deepspeed=zero3"])
    assert recipe["training"]["deepspeed"] == "zero3"


def test_overrides_parse_like_yaml():
    recipe = train.load_recipe("groundvts-q-stage1", ["training.learning_rate=3e-5", "training.save_strategy=no",
                                                       "training.bf16=false", "data.path=x"])
    assert recipe["training"]["learning_rate"] == 3e-5
    assert recipe["training"]["save_strategy"] == "no" and recipe["training"]["bf16"] is False


def test_list_recipes(capsys):
    assert train_cli.main(["--list-recipes"]) == 0
    assert "groundvts-i-stage3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no-such-recipe"], "not found"),
        (["groundvts-q-stage1", "--set", "oops"], "KEY=VALUE"),
        (["groundvts-q-stage1", "--set", "surprise=1"], "unknown keys"),
        (["groundvts-q-stage3", "--set", "data.path=/does/not/exist"], "does not exist"),
        (["groundvts-q-stage1", "--set", "data.format=csv"], "data.format"),
        (["groundvts-q-stage1", "--set", "training.not_a_field=1"], "training"),
        ([], "give a recipe"),
    ],
)
def test_bad_input_exits_2_with_a_message(argv, message, capsys):
    if argv and argv[0].startswith("groundvts-"):
        argv = [*argv, "--set", "training.use_cpu=true"]
    assert train_cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_merge_refuses_a_folder_without_adapter(tmp_path, capsys):
    assert merge_lora.main(["--base", str(tmp_path), "--adapter", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "adapter_config.json" in capsys.readouterr().err
