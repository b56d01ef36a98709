"""Build, and upload, the Hub Space of one GroundVTS `evaluate` metric.

`evaluate.load("<namespace>/<name>")` fetches `<name>.py` from the Space `<namespace>/<name>`, so the
Space is named after the metric script. The folder holds that script (copied unchanged), an
`app.py`, a `README.md` whose front matter makes it a Gradio Space tagged `evaluate`/`metric` (its body is the
metric folder's card, `evaluate_metrics/<name>/README.md`), and a `requirements.txt`. `evaluate-cli create` is not used: it is broken on huggingface_hub 2.x.

    space_dir = build_space("moment_retrieval", "my-org", DEFAULT_OUT_DIR)   # no network
    upload_space(space_dir, "my-org/moment_retrieval")                       # HF_TOKEN; raises UploadError

The command is `python -m groundvts.scripts.cli.push_metric_space`.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from huggingface_hub import HfApi, SpaceCardData
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import validate_repo_id

from groundvts.scripts.release.hub import UploadError

METRICS_DIR = Path(str(files("groundvts.evaluate_metrics")))  # package data: the metric folders
DEFAULT_OUT_DIR = Path("build") / "spaces"
DEFAULT_SDK_VERSION = "5.49.1"
# Third-party imports a metric script may use -> the requirement the Space installs for it.
REQUIREMENTS = {"datasets": "datasets>=2.14", "evaluate": "evaluate>=0.4.6", "numpy": "numpy"}

# Small inputs that fill the app's form; each must run through its metric (tested).
EXAMPLES: dict[str, dict] = {
    "moment_retrieval": {
        "predictions": [[[2.0, 8.0], [0.0, 4.0]], [[12.0, 30.0]], None],
        "references": [
            {"windows": [[0.0, 10.0]], "duration": 30.0},
            {"windows": [[15.0, 25.0], [40.0, 50.0]], "duration": 60.0},
            {"windows": [[5.0, 9.0]], "duration": 20.0},
        ],
        "kwargs": {"iou_thresholds": [0.3, 0.5, 0.7], "ks": [1, 2]},
    },
    "qvhighlights": {
        "predictions": [
            {"qid": 1, "pred_relevant_windows": [[0, 10, 0.9], [20, 30, 0.4]], "pred_saliency_scores": [0.9, 0.8, 0.1, 0.0]},
        ],
        "references": [
            {
                "qid": 1,
                "duration": 8,
                "relevant_windows": [[0, 4]],
                "relevant_clip_ids": [0, 1],
                "saliency_scores": [[4, 3, 2], [2, 2, 1]],
            }
        ],
        "kwargs": {"decimals": 2},
    },
    "nextgqa": {
        "predictions": [
            {"qid": "100_0", "window": [2.0, 6.0], "answer": "dance"},
            {"qid": "100_1", "window": None, "answer": "sit"},
        ],
        "references": [
            {"qid": "100_0", "windows": [[0.0, 4.0], [5.0, 10.0]], "answer": "dance", "duration": 12},
            {"qid": "100_1", "windows": [[3.0, 9.0]], "answer": "stand", "duration": 12},
        ],
        "kwargs": {"zero_length_iop": "official"},
    },
}

APP_TEMPLATE = '''"""Gradio app of the {name} evaluate metric Space (built by GroundVTS scripts/release/metric_space.py).

evaluate's launch_gradio_widget builds its form with gr.inputs, which gradio 4 removed, so this
app is a small JSON-in / JSON-out form instead.
"""

import json
from pathlib import Path

import evaluate
import gradio as gr

METRIC = evaluate.load(str(Path(__file__).resolve().parent / "{name}.py"))
EXAMPLE_PREDICTIONS = {predictions!r}
EXAMPLE_REFERENCES = {references!r}
EXAMPLE_KWARGS = {kwargs!r}


def compute(predictions: str, references: str, kwargs: str) -> dict:
    """Run the metric on three JSON texts; bad input comes back as {{"error": message}}."""
    try:
        options = json.loads(kwargs) if kwargs.strip() else {{}}
        return METRIC.compute(predictions=json.loads(predictions), references=json.loads(references), **options)
    except (ValueError, TypeError) as err:
        return {{"error": str(err)}}


demo = gr.Interface(
    fn=compute,
    inputs=[
        gr.Textbox(label="predictions (JSON list)", value=EXAMPLE_PREDICTIONS, lines=6),
        gr.Textbox(label="references (JSON list)", value=EXAMPLE_REFERENCES, lines=6),
        gr.Textbox(label="compute options (JSON object)", value=EXAMPLE_KWARGS, lines=2),
    ],
    outputs=gr.JSON(label="{name}"),
    title="Metric: {name}",
    article=(Path(__file__).resolve().parent / "README.md").read_text(encoding="utf-8").split("---", 2)[-1],
)

if __name__ == "__main__":
    demo.launch()
'''

README_BODY = """
# Metric: {name}

{description}

## How to use

```python
import evaluate

metric = evaluate.load("{repo_id}")
results = metric.compute(predictions=predictions, references=references)
```

Example input, as in the app:

```python
predictions = {predictions}
references = {references}
metric.compute(predictions=predictions, references=references, **{kwargs})
```

## Inputs and outputs
{inputs}

## Citation

```bibtex
{citation}```
"""


def metric_names(metrics_dir: Path = METRICS_DIR) -> list[str]:
    """Folders of `metrics_dir` that hold a `<folder>/<folder>.py` metric script."""
    return sorted(p.name for p in metrics_dir.iterdir() if (p / f"{p.name}.py").is_file())


@dataclass
class SpaceSettings:
    """Which metric's Space to build, for which Hub namespace, and where."""

    metric: str = field(metadata={"positional": True, "help": f"metric folder name, one of {metric_names()}"})
    namespace: str = field(metadata={"help": "Hub user or organisation that owns the Space"})
    out_dir: Path = field(default=DEFAULT_OUT_DIR, metadata={"help": "where the Space folder is built"})
    overwrite: bool = field(default=False, metadata={"help": "replace an existing build folder"})
    sdk_version: str = field(default=DEFAULT_SDK_VERSION, metadata={"help": "gradio version of the Space"})

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.metric}"


def script_requirements(script: Path) -> list[str]:
    """Requirements of a metric script; refuses relative and unknown third-party imports."""
    roots = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            raise ValueError(f"{script.name}: relative import at line {node.lineno}; a metric script must be self-contained")
        if isinstance(node, ast.ImportFrom):
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
    third_party = sorted(r for r in roots if r not in sys.stdlib_module_names)
    unknown = [r for r in third_party if r not in REQUIREMENTS]
    if unknown:
        raise ValueError(f"{script.name}: imports {unknown}, which the Space requirements do not cover")
    return [REQUIREMENTS[r] for r in third_party]


SOURCE_SECTION = """
## Source

`evaluate_metrics/{name}/{name}.py` of GroundVTS, copied unchanged. It is self-contained: its
only third-party imports are the packages in `requirements.txt`.
"""


def readme_text(name: str, repo_id: str, info, sdk_version: str, card: str | None = None) -> str:
    """README.md: Space front matter (§7 of the field notes) and the metric card: the metric folder's own README.md
    (`card`; its conventions and limitations travel with the metric), else one generated from the module info."""
    card_data = SpaceCardData(
        title=name,
        sdk="gradio",
        sdk_version=sdk_version,
        app_file="app.py",
        license="apache-2.0",
        tags=["evaluate", "metric"],
        emoji="🎬",
        colorFrom="indigo",
        colorTo="blue",
        pinned=False,
    )
    if card is not None:
        body = card.split("---", 2)[-1] if card.startswith("---") else card  # the card's own front matter goes
        body = body.replace("<namespace>/", repo_id.split("/")[0] + "/") + SOURCE_SECTION.format(name=name)
        return f"---\n{card_data.to_yaml()}\n---\n{body}"
    example = EXAMPLES.get(name, {"predictions": [], "references": [], "kwargs": {}})
    body = README_BODY.format(
        name=name,
        repo_id=repo_id,
        description=info.description.strip(),
        inputs=info.inputs_description.rstrip(),
        citation=info.citation,
        predictions=example["predictions"],
        references=example["references"],
        kwargs=example["kwargs"],
    ) + SOURCE_SECTION.format(name=name)
    return f"---\n{card_data.to_yaml()}\n---\n{body}"


def app_text(name: str) -> str:
    """app.py: a JSON form around the metric, pre-filled with its example."""
    example = EXAMPLES.get(name, {"predictions": [], "references": [], "kwargs": {}})
    return APP_TEMPLATE.format(
        name=name,
        predictions=json.dumps(example["predictions"]),
        references=json.dumps(example["references"]),
        kwargs=json.dumps(example["kwargs"]),
    )


def build_space(
    name: str,
    namespace: str,
    out_dir: Path,
    *,
    metrics_dir: Path = METRICS_DIR,
    sdk_version: str = DEFAULT_SDK_VERSION,
    overwrite: bool = False,
) -> Path:
    """Write the Space folder `out_dir/<name>` and return it (no network)."""
    import evaluate  # deferred: only building needs it, and it is slow to import

    script = metrics_dir / name / f"{name}.py"
    if not script.is_file():
        raise ValueError(f"no metric script {script}; known metrics: {metric_names(metrics_dir)}")
    repo_id = f"{namespace}/{name}"
    validate_repo_id(repo_id)
    requirements = script_requirements(script)
    space_dir = Path(out_dir) / name
    if space_dir.exists() and any(space_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{space_dir} is not empty; pass --overwrite to replace it")
        shutil.rmtree(space_dir)
    space_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(script, space_dir / script.name)
    # Loading the copy proves the script works on its own, as it will on the Hub.
    info = evaluate.load(str(space_dir)).info
    card_file = metrics_dir / name / "README.md"
    card = card_file.read_text(encoding="utf-8") if card_file.is_file() else None
    (space_dir / "README.md").write_text(readme_text(name, repo_id, info, sdk_version, card), encoding="utf-8")
    (space_dir / "app.py").write_text(app_text(name), encoding="utf-8")
    (space_dir / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return space_dir


def upload_space(space_dir: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Create the Gradio Space if needed and upload the folder; returns the Space URL. Raises UploadError."""
    try:
        api = HfApi(token=token)
        repo = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            repo_type="space",
            folder_path=str(space_dir),
            commit_message=f"Upload the {space_dir.name} metric",
        )
    except (HfHubHTTPError, OSError) as error:  # refused by the Hub, no network, or an unreadable file
        raise UploadError(f"upload to {repo_id} failed: {error}") from error
    return str(repo)
