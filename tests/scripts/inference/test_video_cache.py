"""`groundvts infer` decodes each video once for all its questions and passes (a bounded cache keyed by file and
frame sampling), with the same predictions as decoding every time."""

import os
import shutil

import numpy as np
import pytest
import torch

from groundvts.processing.annotations import load_annotations
from groundvts.processing.tiny import build_tiny_internvl_processor, build_tiny_qwen2_5_vl_processor, write_test_video
from groundvts.scripts.inference.benchmark import InferenceSettings, run_shard
from groundvts.scripts.inference.generation import prepare_batch
from groundvts.scripts.inference.loading import load_groundvts
from groundvts.scripts.inference.video_cache import DecodedVideoCache
from inference_test_utils import tiny_model_folder, tiny_videos

# Five questions about four videos ("a" twice).
CHARADES = "a 1.0 3.5##a person opens a door.\nb 0.5 2.0##the man walks.\nc 2 6##a dog in the kitchen.\n" \
           "a 4 7.5##person sits down.\nd 0 2##the woman holds a cup.\n"


def count_file_decodes(processor) -> list[str]:
    """Record every video file the processor samples (decodes), whichever way it is reached."""
    decoded: list[str] = []
    real = processor.sample_videos

    def counting(videos, *args, **kwargs):
        decoded.extend(v for v in (videos if isinstance(videos, list) else [videos]) if isinstance(v, str))
        return real(videos, *args, **kwargs)

    processor.sample_videos = counting  # the instance attribute is what `_process_videos` calls too
    return decoded


@pytest.fixture(scope="module")
def charades(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_bench")
    (root / "videos").mkdir()
    for path in tiny_videos().values():
        shutil.copy(path, root / "videos" / path.name)
    (root / "sta_test.txt").write_text(CHARADES)
    (root / "Charades_v1_test.csv").write_text("id,length\na,8.0\nb,6.0\nc,10.0\nd,4.0\n")
    records = load_annotations("charades_sta", root / "sta_test.txt", duration_file=root / "Charades_v1_test.csv")
    return root, records.records


@pytest.mark.parametrize("batch_size", [1, 2])
def test_each_video_is_decoded_once_and_the_predictions_do_not_change(charades, tmp_path, batch_size):
    root, records = charades
    model, processor = load_groundvts(str(tiny_model_folder()), device="cpu")
    decoded = count_file_decodes(processor)
    outputs = {}
    for cache_mb in (0, 64):
        decoded.clear()
        settings = InferenceSettings("charades_sta", ("mr",), batch_size=batch_size, max_new_tokens=5,
                                     video_cache_mb=cache_mb)
        output = tmp_path / f"cache{cache_mb}.jsonl"
        report = run_shard(model, processor, records, root / "videos", output, settings, progress=False)
        assert report.written == 5 and not report.errors
        outputs[cache_mb] = (output.read_bytes(), sorted(os.path.basename(p) for p in decoded), report)
    assert outputs[0][1] == ["a.mp4", "a.mp4", "b.mp4", "c.mp4", "d.mp4"]  # every question decodes
    assert outputs[64][1] == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]  # each file once
    assert (outputs[64][2].video_decodes, outputs[64][2].video_cache_hits) == (4, 1)
    assert outputs[0][2].video_decodes is None
    assert outputs[64][0] == outputs[0][0]  # the same predictions, byte for byte


@pytest.mark.parametrize("build", [build_tiny_qwen2_5_vl_processor, build_tiny_internvl_processor])
def test_cached_frames_give_the_processor_outputs_of_the_path(tmp_path, build):
    processor = build()
    video = str(write_test_video(tmp_path / "v.mp4", num_frames=20, fps=4.0))
    cache = DecodedVideoCache(2**30)
    for sampling in ({}, {"fps": 1.0}, {"num_frames": 6, "max_pixels": 28 * 28 * 4}):
        direct = prepare_batch(None, processor, [video], ["when?"], sampling)
        for _ in range(2):  # decoded, then from the cache
            cached = prepare_batch(None, processor, [video], ["when?"], sampling, cache)
            tensors = [key for key, value in direct.items() if isinstance(value, torch.Tensor)]
            assert "input_ids" in tensors and any(key.startswith("pixel_values") for key in tensors)
            assert set(tensors) == {key for key, value in cached.items() if isinstance(value, torch.Tensor)}
            for key in tensors:
                assert torch.equal(direct[key], cached[key]), (sampling, key)
            assert direct["video_metadata"][0].frames_indices == cached["video_metadata"][0].frames_indices
            assert direct["video_metadata"][0].timestamps == cached["video_metadata"][0].timestamps
    assert (cache.decodes, cache.hits) == (3, 3)  # one decode per sampling setting; max_pixels is not one


class FakeProcessor:
    """Samples a 'video' into `frames` frames of 1 KB each, counting calls."""

    def __init__(self):
        self.calls = 0

    def sample_videos(self, videos, fps=None, num_frames=4):
        self.calls += 1
        return [np.zeros((num_frames, 16, 16, 4), np.uint8)], [{"video": videos[0]}]


def test_cache_is_keyed_by_file_and_sampling_and_bounded(tmp_path):
    paths = []
    for name in "abc":
        paths.append(tmp_path / f"{name}.mp4")
        paths[-1].write_bytes(name.encode())
    processor, cache = FakeProcessor(), DecodedVideoCache(max_bytes=2 * 4096)  # two 4-frame videos
    for path in paths[:2]:
        cache.sampled(processor, str(path), {"num_frames": 4})
    cache.sampled(processor, str(paths[0]), {"num_frames": 4})  # hit; `a` becomes the most recent
    assert (processor.calls, cache.hits, len(cache)) == (2, 1, 2)
    cache.sampled(processor, str(paths[0]), {"num_frames": 2})  # other sampling: decoded again
    assert processor.calls == 3 and len(cache) == 2  # the least recent (`b`, 4 frames) made room
    cache.sampled(processor, str(paths[1]), {"num_frames": 4})
    assert processor.calls == 4
    os.utime(paths[0], ns=(1, 1))  # the file changed: decoded again
    cache.sampled(processor, str(paths[0]), {"num_frames": 2})
    assert processor.calls == 5
    cache.sampled(processor, str(paths[2]), {"num_frames": 16})  # larger than the whole cache: never stored
    cache.sampled(processor, str(paths[2]), {"num_frames": 16})
    assert processor.calls == 7 and sum(entry[2] for entry in cache._entries.values()) <= cache.max_bytes
    with pytest.raises(ValueError, match="cache size"):
        DecodedVideoCache(-1)
