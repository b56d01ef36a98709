"""A new user's path without reading code: synthetic videos GroundVTS-tiny knows (`--preset groundvts-tiny`), the
bundled model by default in `infer`, and the documented tiny recipe fine-tuning it on a messages+videos file on CPU,
then merge and ground with the result."""

import json

from groundvts.scripts.cli import build_data, ground, infer, make_synthetic, merge, train
from groundvts.scripts.data.synthetic.scenes import BENCHMARK_SCENES
from groundvts.scripts.inference.prediction_store import read_rows


def test_preset_videos_bundled_infer_and_the_tiny_recipe(tmp_path, capsys):
    data = tmp_path / "syn"
    assert make_synthetic.main([str(data), "--preset", "groundvts-tiny", "--num-train", "4", "--num-val", "0",
                                "--num-test", "2"]) == 0
    manifest = json.loads((data / "manifest.json").read_text())
    scenes = json.dumps(manifest)
    assert f'"width": {BENCHMARK_SCENES["width"]}' in scenes and '"disappear"' in scenes and '"slide' not in scenes

    preds = tmp_path / "preds.jsonl"
    assert infer.main(["--benchmark", "charades_sta", "--annotations", str(data / "charades_sta_test.txt"),
                       "--video-root", str(data / "videos"), "--output", str(preds), "--no-progress"]) == 0
    assert len(read_rows(preds)[0]) == 2

    ft = tmp_path / "ft"
    assert build_data.main(["--output", str(ft), "--jsonl", str(tmp_path / "mine.jsonl"), "--charades",
                            str(data / "charades_sta_train.txt"), "--video-root", str(data / "videos")]) == 0
    adapter, merged = tmp_path / "adapter", tmp_path / "my-tiny"
    assert train.main(["groundvts-tiny-finetune", "--set", f"data.path={tmp_path / 'mine.jsonl'}",
                       "--set", f"training.output_dir={adapter}", "--set", "training.max_steps=2",
                       "--set", "training.save_strategy=no"]) == 0
    assert "GroundVTS stage 3" in (adapter / "README.md").read_text()
    assert merge.main(["--base", "groundvts-tiny", "--adapter", str(adapter), "--output", str(merged)]) == 0
    capsys.readouterr()
    video = str(next((data / "videos").glob("*.mp4")))
    assert ground.main(["--model", str(merged), "--video", video, "--query", "the red circle appears.", "--json",
                        "--max-new-tokens", "8"]) == 0
    assert "span" in json.loads(capsys.readouterr().out)
