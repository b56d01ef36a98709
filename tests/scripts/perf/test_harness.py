"""The perf harness: each variant in its own process (the `perf._child` entry), the report, and a failing variant."""

import importlib
import json
import os
import sys
import textwrap

import pytest

from groundvts.scripts.cli._perf import build_perf_parser, run_perf_command
from groundvts.scripts.perf.harness import PerfSettings, VariantFailedError, run_harness

# A benchmark module as the harness expects one; its variants report their own process id.
FAKE_BENCHMARK = '''
import os

VARIANTS = {"first": 1, "second": 2}
DEFAULT_REPEATS = 2
DEFAULT_OUT = "fake_benchmark.json"


def run_variant(name, preset, repeats, dtype, device, backbone):
    if os.environ.get("FAIL_VARIANT") == name:
        raise SystemExit("out of memory (pretend)")
    return {"variant": name, "pid": os.getpid(), "repeats": repeats, "hidden": preset["hidden"], "dtype": str(dtype)}


def summarize(results, settings):
    return [f"{name}: {r['repeats']}" for name, r in results.items()], {"results": results}
'''


@pytest.fixture
def fake_benchmark(tmp_path, monkeypatch):
    (tmp_path / "fake_perf_benchmark.py").write_text(textwrap.dedent(FAKE_BENCHMARK))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # for the child processes
    yield importlib.import_module("fake_perf_benchmark")
    sys.modules.pop("fake_perf_benchmark", None)


def test_each_variant_runs_in_its_own_process_and_the_report_is_written(fake_benchmark, tmp_path):
    settings = PerfSettings(repeats=2, out=tmp_path / "reports" / "bench.json")
    report = run_harness(settings, fake_benchmark)
    results = json.loads((tmp_path / "reports" / "bench.json").read_text())["results"]
    assert list(results) == ["first", "second"]
    assert len({r["pid"] for r in results.values()} | {os.getpid()}) == 3  # two children, neither this process
    assert (results["first"]["repeats"], results["first"]["hidden"], results["first"]["dtype"]) == (2, 512, "torch.float32")
    assert report.summary().splitlines() == ["first: 2", "second: 2", f"wrote {tmp_path / 'reports' / 'bench.json'}"]


def test_a_failing_variant_names_itself_and_shows_the_childs_last_words(fake_benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("FAIL_VARIANT", "second")
    with pytest.raises(VariantFailedError, match=r"variant second failed \(exit 1\):\n.*out of memory \(pretend\)"):
        run_harness(PerfSettings(out=tmp_path / "bench.json"), fake_benchmark)
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"backbone": "internvl", "preset": "qwen7b"}, "not among the internvl presets"),
    ({"repeats": 0}, "--repeats must be >= 1"),
    ({"backbone": "llava"}, "--backbone must be one of"),
])
def test_settings_are_checked_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PerfSettings(**kwargs)


def test_the_command_prints_the_table_and_exits_1_when_a_variant_fails(fake_benchmark, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    parser = build_perf_parser(fake_benchmark, "fake benchmark")
    assert run_perf_command(parser, fake_benchmark, []) == 0
    assert capsys.readouterr().out.splitlines() == ["first: 2", "second: 2", "wrote fake_benchmark.json"]
    monkeypatch.setenv("FAIL_VARIANT", "first")
    assert run_perf_command(parser, fake_benchmark, ["--repeats", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: variant first failed (exit 1):\nout of memory (pretend)")
