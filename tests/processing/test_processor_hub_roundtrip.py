"""`save_pretrained` + `AutoProcessor.from_pretrained(..., trust_remote_code=True)` in a process where
`groundvts` cannot be imported returns our processors, and they give identical outputs."""

import json

import numpy as np
import torch
from isolated import run_isolated
from processing_test_utils import assistant_turn, video_turn

from groundvts.processing.tiny import frame_gray_value


CHILD = """
import json
import numpy as np
import torch
from transformers import AutoProcessor

spec = json.load(open("inputs.json"))
frames = np.load("frames.npy")
report = {}
for name, case in spec.items():
    processor = AutoProcessor.from_pretrained(case["folder"], trust_remote_code=True)
    report[name] = {"class": type(processor).__name__, "module": type(processor).__module__}
    outputs = processor(
        text=case["texts"], videos=[case["video"], frames], video_metadata=[None, {"fps": 4.0}], padding=True,
        return_tensors="pt", **case["kwargs"]
    )
    torch.save(dict(outputs), f"{name}.pt")
json.dump(report, open("report.json", "w"))
"""


def test_processors_round_trip_through_remote_code(
    tmp_path, qwen_processor, qwen3_processor, internvl_processor, videos
):
    frames = np.stack([np.full((48, 64, 3), frame_gray_value(i), np.uint8) for i in range(12)])
    np.save(tmp_path / "frames.npy", frames)
    cases = {
        "qwen": (qwen_processor, {"fps": 1.0}),
        "qwen3": (qwen3_processor, {"fps": 1.0}),
        "internvl": (internvl_processor, {"frame_timestamps": True}),
    }
    spec, expected = {}, {}
    for name, (processor, kwargs) in cases.items():
        folder = tmp_path / name
        processor.save_pretrained(folder)
        assert (folder / f"{type(processor).__module__.split('.')[-1]}.py").exists()
        assert {"query_mask.py", "video_sampling.py", "input_checks.py"} <= {p.name for p in folder.iterdir()}
        texts = [
            processor.apply_chat_template(
                [video_turn("When does he jump?"), assistant_turn("from 1.0s to 2.0s")], tokenize=False
            ),
            processor.apply_chat_template([video_turn("Is it raining?")], tokenize=False, add_generation_prompt=True),
        ]
        spec[name] = {"folder": str(folder), "texts": texts, "video": str(videos["4fps"]), "kwargs": kwargs}
        expected[name] = processor(
            text=texts,
            videos=[str(videos["4fps"]), frames],
            video_metadata=[None, {"fps": 4.0}],
            padding=True,
            return_tensors="pt",
            **kwargs,
        )
    (tmp_path / "inputs.json").write_text(json.dumps(spec))

    run_isolated(CHILD, cwd=str(tmp_path))

    report = json.loads((tmp_path / "report.json").read_text())
    for name, (processor, _) in cases.items():
        assert report[name]["class"] == type(processor).__name__
        assert report[name]["module"].startswith("transformers_modules.")
        loaded = torch.load(tmp_path / f"{name}.pt")
        assert set(loaded) == set(expected[name])
        for key, value in expected[name].items():
            assert torch.equal(loaded[key], value), key
        assert int(loaded["query_mask"].sum()) > 0
