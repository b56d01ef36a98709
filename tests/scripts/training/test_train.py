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


def test_values_of_the_wrong_type_and_a_resume_without_checkpoint_are_one_line_errors(tmp_path, capsys, monkeypatch):
    from groundvts.scripts.training import stage

    monkeypatch.setattr(stage, "prepare", lambda *a, **k: pytest.fail("got past the checks"))
    cases = {
        "learning rate": (["--set", "training.learning_rate=abc"], "training.learning_rate='abc': expected a number"),
        "steps": (["--set", "training.max_steps=ten"], "expected an integer"),
        "resume, nothing saved": (["--set", f"training.output_dir={tmp_path / 'out'}", "--resume"], "no checkpoint-*"),
        "resume, not a checkpoint": (["--resume", str(tmp_path)], "not a training checkpoint"),
    }
    for name, (extra, message) in cases.items():
        assert train_cli.main(["groundvts-q-stage1", "--set", "training.use_cpu=true", *extra]) == 2, name
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)


def test_resume_names_the_checkpoint_it_continues(tmp_path):
    from groundvts.scripts.training.stage import resolve_resume

    for step in (5, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    recipe = {"training": {"output_dir": str(tmp_path)}}
    assert resolve_resume(recipe, True) == (str(tmp_path / "checkpoint-10"), f"resuming from {tmp_path / 'checkpoint-10'} (step 10)")
    assert resolve_resume(recipe, str(tmp_path / "checkpoint-5"))[1].endswith("(step 5)")
    assert resolve_resume(recipe, None) == (None, None)


def test_bf16_recipes_train_in_float32_on_a_machine_without_gpu(monkeypatch):
    monkeypatch.setattr(train, "_no_accelerator", lambda: True)
    notes = []
    args = train.training_config(train.load_recipe("groundvts-q-stage3", []), log=notes.append)
    assert args.use_cpu and not args.bf16 and "float32" in notes[0]
    kept = train.training_config(train.load_recipe("groundvts-q-stage3", ["training.use_cpu=true"]))
    assert kept.bf16  # asked for explicitly


def test_a_broken_recipe_file_or_set_value_names_the_line(tmp_path, capsys):
    broken = tmp_path / "mine.yaml"
    broken.write_text("model: x\ntraining:\n  learning_rate: [1,\n")
    assert train_cli.main([str(broken)]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml:" in err and "not valid YAML" in err and "Traceback" not in err
    assert train_cli.main(["groundvts-q-stage1", "--set", "training.x=[1,"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
