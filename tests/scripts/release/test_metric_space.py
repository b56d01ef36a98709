"""release/metric_space.py and its tool `python -m groundvts.scripts.cli.push_metric_space`: the dry-run Space
build, its app, and the upload calls (faked)."""

import json
import os
import runpy
import subprocess
import sys
import types
from pathlib import Path

import evaluate
import pytest
from huggingface_hub import SpaceCard

from groundvts.scripts.cli import push_metric_space as push_cli
from groundvts.scripts.release import metric_space as push

REPO_ROOT = Path(__file__).resolve().parents[3]
METRICS = ["moment_retrieval", "nextgqa", "qvhighlights"]


def test_metric_names_lists_the_metric_folders():
    assert push.metric_names() == METRICS


@pytest.mark.parametrize("name", METRICS)
def test_dry_run_builds_a_loadable_space_folder(tmp_path, name):
    assert push_cli.main([name, "--namespace", "test-org", "--dry-run", "--out-dir", str(tmp_path)]) == 0
    space = tmp_path / name
    assert sorted(p.name for p in space.iterdir()) == sorted(["README.md", "app.py", "requirements.txt", f"{name}.py"])
    assert (space / f"{name}.py").read_bytes() == (REPO_ROOT / "evaluate_metrics" / name / f"{name}.py").read_bytes()
    card = SpaceCard.load(space / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert card.data.tags == ["evaluate", "metric"]
    assert f'evaluate.load("test-org/{name}")' in card.text
    numpy = ["numpy"] if name in ("moment_retrieval", "qvhighlights") else []  # only what the script imports
    assert (space / "requirements.txt").read_text().split() == ["datasets>=2.14", "evaluate>=0.4.6", *numpy]
    # The copied script runs on its own, on the example the app shows.
    example = push.EXAMPLES[name]
    result = evaluate.load(str(space)).compute(
        predictions=example["predictions"], references=example["references"], **example["kwargs"]
    )
    assert result["num_queries"] == len(example["references"])


def test_app_computes_its_example_with_a_stub_gradio(tmp_path, monkeypatch):
    push_cli.main(["qvhighlights", "--namespace", "test-org", "--dry-run", "--out-dir", str(tmp_path)])
    captured = {}
    fake_gradio = types.SimpleNamespace(
        Interface=lambda **kwargs: captured.update(kwargs) or types.SimpleNamespace(launch=lambda: None),
        Textbox=lambda **kwargs: kwargs,
        JSON=lambda **kwargs: kwargs,
    )
    monkeypatch.setitem(sys.modules, "gradio", fake_gradio)
    app = runpy.run_path(str(tmp_path / "qvhighlights" / "app.py"))  # not __main__: no launch
    values = [box["value"] for box in captured["inputs"]]
    result = app["compute"](*values)
    assert result["HL-min-Fair-Hit1"] == 100.0
    assert "error" in app["compute"]("[1]", values[1], "")
    assert "# Metric Card for qvhighlights" in captured["article"]  # the metric folder's card


def test_cli_dry_run_as_a_module(tmp_path):
    # `-m`, not the file's path: run by path, scripts/cli/ would come first on sys.path and its evaluate.py would
    # shadow the `evaluate` library that building a Space imports.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [sys.executable, "-m", "groundvts.scripts.cli.push_metric_space", "nextgqa",
         "--namespace", "test-org", "--dry-run", "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "nextgqa" / "app.py").is_file()
    assert "built" in proc.stdout


def test_existing_folder_needs_overwrite(tmp_path, capsys):
    args = ["moment_retrieval", "--namespace", "test-org", "--dry-run", "--out-dir", str(tmp_path)]
    assert push_cli.main(args) == 0
    assert push_cli.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert push_cli.main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["no_such_metric", "--namespace", "org"], "no metric script"),
    (["nextgqa", "--namespace", "bad org!"], "Repo id"),
])
def test_bad_arguments_exit_with_a_message(tmp_path, capsys, argv, message):
    assert push_cli.main(argv + ["--dry-run", "--out-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_relative_imports_are_refused(tmp_path):
    script = tmp_path / "leaky.py"
    script.write_text("from .helpers import thing\nimport numpy\n")
    with pytest.raises(ValueError, match="relative import"):
        push.script_requirements(script)
    script.write_text("import pandas\n")
    with pytest.raises(ValueError, match="pandas"):
        push.script_requirements(script)


def test_upload_creates_the_space_and_uploads_the_folder(tmp_path, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/spaces/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    monkeypatch.setattr(push, "HfApi", FakeApi)
    assert push_cli.main(["nextgqa", "--namespace", "org", "--out-dir", str(tmp_path), "--private", "--token", "hf_x"]) == 0
    init, create, upload = calls
    assert init == ("init", "hf_x")
    expected_repo = {"repo_type": "space", "space_sdk": "gradio", "private": True, "exist_ok": True}
    assert create == ("create_repo", "org/nextgqa", expected_repo)
    assert upload[1]["repo_id"] == "org/nextgqa" and upload[1]["repo_type"] == "space"
    assert Path(upload[1]["folder_path"]) == tmp_path / "nextgqa"
    assert json.loads(json.dumps(push.EXAMPLES["nextgqa"]))  # examples stay JSON-serialisable for the app


def test_a_failed_upload_exits_1_with_a_message(tmp_path, monkeypatch, capsys):
    class OfflineApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            raise OSError("no network")

    monkeypatch.setattr(push, "HfApi", OfflineApi)
    assert push_cli.main(["nextgqa", "--namespace", "org", "--out-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error: upload to org/nextgqa failed: no network" in err and "Traceback" not in err
    assert (tmp_path / "nextgqa" / "app.py").is_file()  # the folder was built before the upload failed


@pytest.mark.parametrize("name", METRICS)
def test_the_space_ships_the_metric_card(tmp_path, name):
    """The Space's README body is the metric folder's card, so its conventions and limitations reach Hub users."""
    assert push_cli.main([name, "--namespace", "test-org", "--dry-run", "--out-dir", str(tmp_path)]) == 0
    text = (tmp_path / name / "README.md").read_text(encoding="utf-8")
    card_body = (REPO_ROOT / "evaluate_metrics" / name / "README.md").read_text(encoding="utf-8").split("---", 2)[-1]
    assert card_body.replace("<namespace>/", "test-org/") in text
    assert "## Limitations and Bias" in text and "convention" in text and "<namespace>" not in text
