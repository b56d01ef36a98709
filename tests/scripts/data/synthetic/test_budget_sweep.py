"""The token-budget sweep on a micro run folder (untrained tiny models, 3 test videos): every method at every ratio
through the benchmark's evaluator, the table, the plot, and the checks on its input."""

import json
import math

import pytest
import torch

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.scripts.cli import budget_sweep as budget_sweep_cli
from groundvts.scripts.data.synthetic.benchmark import SyntheticSettings, synthetic_model_config, synthetic_processor
from groundvts.scripts.data.synthetic.budget_sweep import SWEEP_METHODS, BudgetSweepSettings, run_budget_sweep
from groundvts.scripts.data.synthetic.videos import make_synthetic_benchmark

RATIOS = ["1.0", "0.5", "0.25"]


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    """A folder shaped like a finished synthetic-benchmark run: data/, base/ (dense) and token/ (GroundVTS)."""
    run = tmp_path_factory.mktemp("run")
    make_synthetic_benchmark(run / "data", seed=0, num_train=2, num_val=0, num_test=3, width=56, height=56,
                             min_duration=8, max_duration=9, event_types=("appear", "disappear"), min_distractors=0,
                             max_distractors=0, shape_size=17)
    settings = SyntheticSettings(hidden=64, layers=1)
    processor = synthetic_processor(settings, 2.0)
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(synthetic_model_config(processor, settings))
    for name, strategy in (("base", "dense"), ("token", "token")):
        model.config.vts_strategy = strategy
        model.save_pretrained(run / name)
        processor.save_pretrained(run / name)
    return run


@pytest.fixture(scope="module")
def sweep(micro_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    argv = [str(micro_run), "--out", str(out), "--ratios", "1", "0.5", "0.25"]
    assert budget_sweep_cli.main(argv) == 0
    return out, json.loads((out / "results.json").read_text())


def test_every_method_has_every_ratio_with_the_metrics(sweep):
    out, report = sweep
    assert list(report["results"]) == list(SWEEP_METHODS)
    for method, rows in report["results"].items():
        assert list(rows) == RATIOS, method
        for metrics in rows.values():
            assert all(0.0 <= metrics[k] <= 100.0 for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "target_tokens_kept"))
    assert (out / "budget_sweep.png").stat().st_size > 0
    table = (out / "budget_sweep.md").read_text()
    assert table.count("\n| 0.25 | ") == len(SWEEP_METHODS)


def test_budgets_are_what_each_method_promises(sweep):
    out, report = sweep
    results = report["results"]
    # rho = 1 of a training-free method is the dense base at 2 fps: evaluated once, shared.
    assert all(results[m]["1.0"] == results["dense_fps"]["1.0"] for m in ("random", "centre_distance"))
    dense_rows = [json.loads(line) for line in (out / "dense_2fps.test.jsonl").read_text().splitlines()]
    for method in ("random", "temporal_redundancy", "centre_distance", "parameter_free", "groundvts"):
        rows = [json.loads(line) for line in (out / f"{method}_rho0.25.test.jsonl").read_text().splitlines()]
        assert {r["strategy"] for r in rows} == {"token" if method == "groundvts" else method}
        kept = [r["num_kept_tokens"] for r in rows]
        assert kept == [math.ceil(0.25 * d["num_video_tokens"]) for d in dense_rows]
        assert results[method]["0.25"]["kept_tokens_per_video"] == pytest.approx(sum(kept) / len(kept))
    # Fewer frames: dense, every token of a quarter of the frames.
    fewer = [json.loads(line) for line in (out / "dense_fps_rho0.25.test.jsonl").read_text().splitlines()]
    assert all(r["num_kept_tokens"] == r["num_video_tokens"] for r in fewer)
    assert sum(r["num_video_tokens"] for r in fewer) < sum(d["num_video_tokens"] for d in dense_rows) / 2
    assert results["dense_fps"]["0.25"]["target_tokens_kept"] == 100.0


def test_the_run_folder_is_only_read(micro_run, sweep):
    config = json.loads((micro_run / "base" / "config.json").read_text())
    assert config["vts_strategy"] == "dense" and not list(micro_run.glob("*.jsonl"))


def test_bad_input_is_a_one_line_error(micro_run, tmp_path, capsys):
    assert budget_sweep_cli.main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2  # not a run folder
    err = capsys.readouterr().err
    assert err.startswith("error:") and "synthetic-benchmark" in err and len(err.strip().splitlines()) == 1
    assert budget_sweep_cli.main([str(micro_run), "--out", str(tmp_path / "o"), "--ratios", "0"]) == 2
    assert "(0, 1]" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown methods"):
        BudgetSweepSettings(run=micro_run, methods=("fastv",))


def test_a_missing_run_folder_names_what_is_missing(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks base, token"):
        run_budget_sweep(BudgetSweepSettings(run=tmp_path), tmp_path / "out")


def test_retraining_at_a_ratio_trains_once_and_is_evaluated_there(micro_run, tmp_path):
    from dataclasses import asdict

    settings = SyntheticSettings(hidden=64, layers=1, num_train=2, num_test=3, batch_size=2, selection_steps=1,
                                 joint_steps=1, finetune_steps=1, variants=("token",))
    (micro_run / "results.json").write_text(json.dumps({"settings": asdict(settings)}))
    try:
        sweep = BudgetSweepSettings(run=micro_run, methods=("groundvts",), ratios=(0.5,), retrain_ratio=0.25, limit=1)
        report = run_budget_sweep(sweep, tmp_path)
        model = tmp_path / "token_rho0.25"
        assert json.loads((model / "config.json").read_text())["vts_keep_ratio"] == 0.25
        assert (tmp_path / "token_rho0.25_stage1").is_dir()  # the selection was trained at that ratio
        rows = [json.loads(line) for line in (tmp_path / "groundvts_retrained_rho0.25.test.jsonl").read_text().splitlines()]
        assert [(r["strategy"], r["keep_ratio"]) for r in rows] == [("token", 0.25)]
        assert list(report["results"]["groundvts_retrained"]) == ["0.25"]
        trained = (model / "model.safetensors").stat().st_mtime_ns
        run_budget_sweep(sweep, tmp_path)  # a second run reuses the re-trained model
        assert (model / "model.safetensors").stat().st_mtime_ns == trained
    finally:
        (micro_run / "results.json").unlink()


def test_a_rerun_reuses_every_saved_evaluation(micro_run, sweep):
    out, report = sweep
    predictions = out / "centre_distance_rho0.5.test.jsonl"
    before = predictions.stat().st_mtime_ns
    again = run_budget_sweep(BudgetSweepSettings(run=micro_run, ratios=(1.0, 0.5, 0.25)), out)
    assert again["results"] == report["results"] and predictions.stat().st_mtime_ns == before
    assert json.loads((out / "centre_distance_rho0.5.metrics.json").read_text())["metrics"] == report["results"][
        "centre_distance"]["0.5"]
    # --saved-only builds the report from what is saved and lists the rest.
    saved = run_budget_sweep(BudgetSweepSettings(run=micro_run, ratios=(0.5, 0.125), saved_only=True), out)
    assert saved["results"]["random"] == {"0.5": report["results"]["random"]["0.5"]}
    assert "random_rho0.125" in saved["missing"] and not (out / "random_rho0.125.test.jsonl").exists()
