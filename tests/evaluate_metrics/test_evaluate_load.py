"""Each metric loads with evaluate.load from its absolute path in a fresh process with an empty cache."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

METRICS_DIR = Path(__file__).resolve().parents[2] / "evaluate_metrics"

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import evaluate

    root = sys.argv[1]
    mr = evaluate.load(root + "/moment_retrieval")
    qvh = evaluate.load(root + "/qvhighlights")
    gqa = evaluate.load(root + "/nextgqa")
    out = {
        "moment_retrieval": mr.compute(predictions=[[2.0, 8.0]], references=[[[0.0, 10.0]]]),
        "qvhighlights": qvh.compute(
            predictions=[{"qid": 1, "pred_relevant_windows": [[0, 10, 0.9]], "pred_saliency_scores": [0.1, 0.9, 0.5, 0.2]}],
            references=[{"qid": 1, "duration": 8, "relevant_windows": [[0, 10]], "relevant_clip_ids": [1, 2],
                         "saliency_scores": [[4, 1, 2], [2, 3, 0]]}],
        ),
        "nextgqa": gqa.compute(predictions=[{"qid": "a", "window": [2, 6], "answer": "x"}],
                               references=[{"qid": "a", "windows": [[0, 4]], "answer": "x"}]),
        "classes": [type(m).__name__ for m in (mr, qvh, gqa)],
    }
    print(json.dumps(out))
    """
)


def test_metrics_load_by_absolute_path_in_a_fresh_process(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_MODULES_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(METRICS_DIR.resolve())],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["classes"] == ["MomentRetrieval", "Qvhighlights", "Nextgqa"]
    assert out["moment_retrieval"]["mIoU"] == pytest.approx(60.0)  # float32 IoU, as eval_auto computes it
    assert out["qvhighlights"]["HL-min-Fair-mAP"] == 83.33
    assert out["qvhighlights"]["MR-full-R1@0.5"] == 100.0
    assert out["nextgqa"]["mIoP"] == 50.0
    # The modules were imported from the fresh cache, not from this process or a shared cache.
    assert (tmp_path / "hf" / "modules" / "evaluate_modules" / "metrics" / "moment_retrieval").is_dir()
