"""The synthetic comparison runner end to end on micro sizes: data -> base (stage 0) -> variants -> infer/evaluate."""

import json

import pytest

from groundvts.scripts.cli import bundle_tiny_model as bundle_cli
from groundvts.scripts.cli import synthetic_benchmark as synthetic_benchmark_cli
from groundvts.scripts.data.synthetic import benchmark as synthetic_benchmark

METRICS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    argv = ["--out", str(out), "--num-train", "6", "--num-test", "3", "--tower-steps", "2", "--base-steps", "2", "--selection-steps", "1",
            "--finetune-steps", "1", "--batch-size", "3", "--variants", "uniform_1fps", "token_no_pe",
            "--size", "56", "56", "--shape-size", "12", "--duration", "8", "10", "--event-types", "appear", "disappear",
            "--frame-side", "56", "--hidden", "64", "--layers", "1"]
    assert synthetic_benchmark_cli.main(argv) == 0
    return out


def test_every_row_has_the_moment_retrieval_metrics(micro_run):
    report = json.loads((micro_run / "results.json").read_text())
    assert list(report["results"]) == ["mean_window", "base_2fps_dense", "uniform_1fps", "token_no_pe"]
    for metrics in report["results"].values():
        assert all(0.0 <= metrics[key] <= 100.0 for key in METRICS)
    # The share of the target's tokens that reached the LLM: all of them for dense models, half the video for VTS.
    results = report["results"]
    assert "target_tokens_kept" not in results["mean_window"]
    assert results["base_2fps_dense"]["target_tokens_kept"] == results["uniform_1fps"]["target_tokens_kept"] == 100.0
    assert 0.0 <= results["token_no_pe"]["target_tokens_kept"] <= 100.0
    # Every test query got a prediction row from `groundvts infer`.
    rows = [json.loads(line) for line in (micro_run / "token_no_pe.test.jsonl").read_text().splitlines()]
    assert len(rows) == 3


def test_every_variant_ran_the_groundvts_stages(micro_run):
    # token_no_pe learns its selection (stage 1); both variants train LoRA on video QA (2), then on grounding (3).
    for stage in ("token_no_pe_stage1", "token_no_pe_stage2", "token_no_pe_stage3", "uniform_1fps_stage2",
                  "uniform_1fps_stage3"):
        assert (micro_run / stage).is_dir(), stage
    assert not (micro_run / "uniform_1fps_stage1").exists()  # fixed-rule selection: nothing to warm up


def test_video_qa_asks_about_each_train_video(micro_run):
    manifest = json.loads((micro_run / "data" / "manifest.json").read_text())
    qa = synthetic_benchmark.video_qa_dataset(micro_run / "data", seed=0)
    train = {s["video_id"]: s["target"] for s in manifest["samples"] if s["split"] == "train"}
    assert len(qa) == len(train)
    for row in qa:
        target = train[row["videos"][0].rsplit("/", 1)[-1].removesuffix(".mp4")]
        answer = row["messages"][1]["content"][0]["text"]
        assert answer == {"appear": "It appears.", "disappear": "It disappears."}[target["event"]]


def test_variants_carry_their_selection_and_sampling(micro_run):
    base = json.loads((micro_run / "base" / "config.json").read_text())
    assert base["vts_strategy"] == "dense"
    no_pe = json.loads((micro_run / "token_no_pe" / "config.json").read_text())
    assert (no_pe["vts_strategy"], no_pe["vts_keep_ratio"], no_pe["vts_keep_positions"]) == ("token", 0.5, False)
    uniform_video = json.loads((micro_run / "uniform_1fps" / "processor_config.json").read_text())["video_processor"]
    token_video = json.loads((micro_run / "token_no_pe" / "processor_config.json").read_text())["video_processor"]
    assert (uniform_video["fps"], token_video["fps"]) == (1.0, 2.0)  # equal LLM budget: 1 fps dense = 2 fps x 0.5


def test_scene_and_model_options_reach_the_data_and_the_model(micro_run):
    manifest = json.loads((micro_run / "data" / "manifest.json").read_text())
    settings = manifest["settings"]
    assert (settings["width"], settings["height"], settings["shape_size"]) == (56, 56, 12)
    assert {sample["event"] for sample in manifest["samples"]} <= {"appear", "disappear"}
    assert all(8.0 <= sample["duration"] <= 10.0 for sample in manifest["samples"])
    base = json.loads((micro_run / "base" / "config.json").read_text())
    assert (base["text_config"]["hidden_size"], base["text_config"]["num_hidden_layers"]) == (64, 1)
    report = json.loads((micro_run / "results.json").read_text())
    assert report["settings"]["generator"]["event_types"] == ["appear", "disappear"]
    assert set(report["tower_accuracy"]) == {"token_accuracy", "target_token_accuracy"}  # the pre-task ran
    # The benchmark's tokenizer knows its words: a colour and a shape are one token each.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(micro_run / "base")
    assert len(tokenizer.tokenize(" purple diamond")) == 2


def test_a_run_bundles_as_groundvts_tiny(micro_run, tmp_path, capsys):
    """The tool that rebuilds hub_configs/groundvts-tiny, on the micro run: release folder, toy card, examples."""
    out = tmp_path / "tiny"
    argv = [str(micro_run), "--variant", "token_no_pe", "--out-dir", str(out), "--examples", "1"]
    assert bundle_cli.main(argv) == 0
    assert f"bundled {out}" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert "GroundVTS-tiny is a toy" in (out / "README.md").read_text()
    examples = json.loads((out / "examples" / "examples.json").read_text())
    assert len(examples) == 1 and (out / "examples" / examples[0]["video"]).is_file()
    processor = json.loads((out / "processor_config.json").read_text())["video_processor"]
    assert processor["fps"] == synthetic_benchmark.BASE_FPS and processor["max_frames"] == 128
    assert bundle_cli.main([str(micro_run), "--variant", "token", "--out-dir", str(out)]) == 2  # not in the micro run
    assert capsys.readouterr().err.startswith("error:")


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert synthetic_benchmark_cli.main(["--out", str(tmp_path), "--num-train", "0"]) == 2
    assert ">= 1" in capsys.readouterr().err


def test_cli_scene_defaults_are_the_benchmark_scenes():
    """Without scene options the CLI generates what `SyntheticSettings()` documents, not make-synthetic's defaults."""
    _, settings, _ = synthetic_benchmark_cli.parse_settings(["--out", "unused"])
    assert settings.generator["width"] == 56 and settings.generator["shape_size"] == 17.0
    assert {k: settings.generator[k] for k in synthetic_benchmark.BENCHMARK_SCENES} == synthetic_benchmark.BENCHMARK_SCENES


def test_video_qa_answers_every_event_the_generator_makes():
    from groundvts.scripts.data.synthetic.scenes import EVENT_TYPES

    assert set(synthetic_benchmark.VIDEO_QA_ANSWERS) == set(EVENT_TYPES)


def test_stage4_runs_after_the_token_variant_and_on_a_finished_run(tmp_path):
    out = tmp_path / "run"
    argv = ["--out", str(out), "--num-train", "4", "--num-test", "2", "--tower-steps", "1", "--base-steps", "1",
            "--selection-steps", "1", "--joint-steps", "0", "--finetune-steps", "1", "--batch-size", "2",
            "--variants", "token", "--grpo-steps", "1", "--grpo-generations", "2", "--grpo-prompts-per-step", "1",
            "--size", "56", "56", "--shape-size", "12", "--duration", "8", "10", "--event-types", "appear", "disappear",
            "--frame-side", "56", "--hidden", "64", "--layers", "1"]
    assert synthetic_benchmark_cli.main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert list(report["results"]) == ["mean_window", "base_2fps_dense", "token", "token_grpo"]
    assert all(0.0 <= report["results"]["token_grpo"][key] <= 100.0 for key in METRICS)
    log = json.loads((out / "token_grpo_log.json").read_text())
    assert log and {"reward", "reward_std", "kl"} <= set(log[0])
    # --only-grpo redoes stage 4 alone on the finished folder.
    (out / "token_grpo").rename(out / "token_grpo_first")
    assert synthetic_benchmark_cli.main([*argv, "--only-grpo"]) == 0
    assert (out / "token_grpo" / "config.json").is_file()


def test_only_grpo_needs_a_token_model_and_steps(tmp_path, capsys):
    assert synthetic_benchmark_cli.main(["--out", str(tmp_path), "--only-grpo"]) == 2
    assert "--only-grpo needs --grpo-steps" in capsys.readouterr().err
    assert synthetic_benchmark_cli.main(["--out", str(tmp_path), "--only-grpo", "--grpo-steps", "1"]) == 2
    assert "run the benchmark with the `token` variant first" in capsys.readouterr().err
