"""Decoding by seeking gives the frames of a sequential decode (same indices, same pixels), keeps memory to the
kept frames, and falls back to sequential decoding, with a warning, when the index cannot be trusted."""

import gc
import json
import logging
import subprocess
import sys
import types
from dataclasses import replace

import numpy as np
import pytest
from timing_videos import vfr_frame_times
from transformers.video_utils import load_video

from groundvts.processing import video_decoding
from groundvts.processing.tiny import frame_gray_value, write_gop_video
from groundvts.processing.video_decoding import StreamIndex, decode_frames, resolve_backend, torchcodec_available
from groundvts.processing.video_sampling import (
    FrameChoice,
    decode_video_frames,
    prepare_videos,
    read_video_info,
    uniform_step_positions,
)

# name -> (frames, fps, keyframe interval, frame times or None): constant rate, odd NTSC rates, variable rate (slow
# irregular frames, then 30 fps), and a long group of pictures (one keyframe for the whole file).
VFR_TIMES = vfr_frame_times()
SOURCES = {
    "cfr_30": (90, 30.0, 30, None),
    "ntsc_23.976": (96, 24000 / 1001, 24, None),
    "ntsc_29.97": (90, 30000 / 1001, 30, None),
    "vfr": (len(VFR_TIMES), 30.0, 30, VFR_TIMES),
    "long_gop_250": (300, 30.0, 250, None),
}


@pytest.fixture(scope="module")
def gop_videos(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("gop_videos")
    return {
        name: str(write_gop_video(folder / f"{name}.mp4", count, fps, gop=gop, frame_times=times))
        for name, (count, fps, gop, times) in SOURCES.items()
    }


def sequential_reference(path: str, indices: list[int]) -> np.ndarray:
    """The old path: transformers' PyAV reader decodes every frame up to the last kept one."""
    unique = sorted(set(indices))
    frames, _ = load_video(path, backend="pyav", sample_indices_fn=lambda metadata, **kw: np.asarray(unique))
    # Its reader (transformers 5.23 `read_video_pyav`) never closes the file: its decoder threads live until a
    # garbage collection, and a process forked meanwhile (a DataLoader worker) can hang when it collects them.
    gc.collect()
    position = {index: k for k, index in enumerate(unique)}
    return np.asarray(frames)[[position[i] for i in indices]]


def no_sequential_decoding(monkeypatch):
    def fail(path, out, threads=0):
        raise AssertionError(f"{path} was decoded sequentially")

    monkeypatch.setattr(video_decoding, "_decode_sequential", fail)


def chooser(count: int):
    return lambda total, fps: FrameChoice(uniform_step_positions(total, count))


@pytest.mark.parametrize("name", list(SOURCES))
def test_seeking_gives_the_sequential_frames(gop_videos, name, monkeypatch, caplog):
    path = gop_videos[name]
    total = SOURCES[name][0]
    # Every frame once, then a sparse pick in shuffled order with repeats: frames at and around keyframes.
    every = list(range(total))
    sparse = [total - 1, 0, 5, 5, 31, 29, 30, total // 2, 1]
    reference_every, reference_sparse = sequential_reference(path, every), sequential_reference(path, sparse)
    no_sequential_decoding(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(decode_video_frames(path, every, backend="pyav"), reference_every)
        assert np.array_equal(decode_video_frames(path, sparse, backend="pyav"), reference_sparse)
    assert not caplog.records
    levels = [float(frame.mean()) for frame in reference_sparse]
    assert levels == pytest.approx([frame_gray_value(i) for i in sparse], abs=4)  # the right frames, by content


@pytest.mark.parametrize("name", list(SOURCES))
def test_processor_sampling_keeps_indices_and_pixels(gop_videos, name, monkeypatch):
    path = gop_videos[name]
    no_sequential_decoding(monkeypatch)
    frames, metadata = prepare_videos(path, choose_indices=chooser(16), backend="pyav")
    indices = metadata[0].frames_indices
    assert len(indices) == 16 and metadata[0].video_backend == "pyav"
    assert np.array_equal(frames[0], sequential_reference(path, indices))
    if SOURCES[name][3] is not None:  # variable rate: the frames on screen at evenly spaced times
        times = metadata[0].timestamps
        assert times == pytest.approx([VFR_TIMES[i] for i in indices], abs=1e-6)
        assert len(set(indices)) == 16 and indices != [k * len(VFR_TIMES) // 16 for k in range(16)]


def no_reading_every_packet(monkeypatch):
    def fail(container, stream):
        raise AssertionError("every packet was read")

    monkeypatch.setattr(video_decoding, "_demuxed_stamps", fail)


@pytest.mark.parametrize("name", list(SOURCES))
def test_the_sample_table_gives_the_timestamps_every_packet_gives(gop_videos, name, monkeypatch):
    """MP4: every frame's PTS, the keyframes', the frame times and the duration come from the container's sample
    table plus the first and last groups of pictures, equal to reading every packet, B-frames and variable rate
    included."""
    path = gop_videos[name]
    exact = read_video_info(path)
    no_reading_every_packet(monkeypatch)
    derived = read_video_info(path, container_index=True)
    # Two groups of pictures or fewer (long_gop_250): the head read is the whole stream, exact as it stands.
    assert derived.stream_index.from_container == (len(exact.stream_index.keyframe_pts) > 2)
    assert not exact.stream_index.from_container  # the default reads every packet
    assert derived.stream_index.pts == exact.stream_index.pts
    assert derived.stream_index.keyframe_pts == exact.stream_index.keyframe_pts
    assert derived == exact  # frame count, rate, size, duration, frame times


def test_the_sample_table_is_read_without_reading_the_file(tmp_path, monkeypatch):
    """A long file: the packets read are its first and last groups of pictures, not its length; variable rate
    without B-frames too (there the PTS are the DTS)."""
    times = [k / 30 + (0.02 if k % 3 else 0.0) for k in range(3000)]  # 0.6 frame off the grid: variable rate
    paths = [
        str(write_gop_video(tmp_path / "long.mp4", 3000, 30.0, gop=30)),
        str(write_gop_video(tmp_path / "vfr_no_b.mp4", 3000, 30.0, gop=30, b_frames=0, frame_times=times)),
    ]
    exact = [read_video_info(path) for path in paths]
    assert exact[1].frame_times is not None  # variable rate
    packets_from, read = video_decoding._packets_from, []

    def counted(*args):
        found = packets_from(*args)
        read.append(len(found or ()))
        return found

    monkeypatch.setattr(video_decoding, "_packets_from", counted)
    no_reading_every_packet(monkeypatch)
    for path, reference in zip(paths, exact):
        read.clear()
        derived = read_video_info(path, container_index=True)
        assert derived == reference and derived.stream_index.pts == reference.stream_index.pts
        assert sum(read) == 90  # the first two groups of pictures of 30 frames and the last


def test_files_the_sample_table_cannot_describe_read_every_packet(gop_videos, tmp_path):
    """Matroska (cues list keyframes only) and PyAV before 18 (no `index_entries`): every packet is read, as before.
    A file cut mid-way through a group of pictures (its first frames come before any keyframe, so no decoder shows
    them and the frame count and times of its header are not the decoded ones) is refused with what to do."""
    import av

    cut, mkv = tmp_path / "cut.mp4", tmp_path / "cfr.mkv"
    with av.open(gop_videos["cfr_30"]) as source, av.open(str(cut), "w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for position, packet in enumerate(p for p in source.demux(source.streams.video[0]) if p.size):
            if position >= 10:
                packet.stream = stream
                target.mux(packet)
    write_gop_video(mkv, 90, 30.0, gop=30)
    info, packets_read = read_video_info(str(mkv), container_index=True), read_video_info(str(mkv))
    assert info == packets_read and info.stream_index == packets_read.stream_index
    assert not info.stream_index.from_container
    for container_index in (True, False):
        with pytest.raises(ValueError, match=r"cut\.mp4' starts \d+ frames before its first keyframe.*Re-encoding"):
            read_video_info(str(cut), container_index=container_index)
    with pytest.raises(ValueError, match="before its first keyframe"):
        prepare_videos(str(cut), choose_indices=chooser(4), backend="pyav")
    assert not video_decoding._lists_every_frame(types.SimpleNamespace(frames=90))  # PyAV < 18


def remuxed(source: str, target: str, shift: int = 0, **options) -> str:
    """`source`'s video packets copied into `target` (timestamps moved by `shift`), with muxer `options`."""
    import av

    with av.open(source) as original, av.open(target, "w", options=options) as copy:
        stream = copy.add_stream_from_template(original.streams.video[0])
        for packet in original.demux(original.streams.video[0]):
            if packet.size:
                packet.pts, packet.dts, packet.stream = packet.pts + shift, packet.dts + shift, stream
                copy.mux(packet)
    return target


def test_a_trim_whose_edit_list_hides_its_first_keyframe_seeks_exactly(tmp_path, monkeypatch, caplog):
    """`ffmpeg -ss T -i IN -c copy OUT.mp4` keeps the packets from the keyframe before T and hides the frames before
    T with an edit list: the frames shown are counted (not the header's), and the first ones decode from the hidden
    keyframe, pixel-equal to a sequential decode, without a warning."""
    import av

    source = write_gop_video(tmp_path / "source.mp4", 100, 30.0, gop=30)
    # Frames 0-9 moved before the start: the muxer writes an edit list that hides them.
    trim = remuxed(str(source), str(tmp_path / "trim.mp4"), shift=-10 * 512)
    with av.open(trim) as container:
        shown = len(list(container.decode(video=0)))
    info = read_video_info(trim)
    assert shown == info.num_frames == 90 and info.stream_index.hidden_start
    assert info.duration == pytest.approx(3.0)
    indices = [0, 5, 19, 20, 21, 45, 89]  # 0-19 come from the hidden keyframe's group of pictures
    no_sequential_decoding(monkeypatch)
    with caplog.at_level(logging.WARNING):
        frames = decode_video_frames(trim, indices, backend="pyav")
    assert np.array_equal(frames, sequential_reference(trim, indices))
    assert not caplog.records


@pytest.mark.parametrize("kind", ["fragmented", "intra_shifted"])
def test_mp4_frame_counts_are_the_frames_decoders_show(tmp_path, kind, caplog):
    """Headers that miscount: a fragmented MP4 without an empty moov counts its first fragment only (30 of 95), and
    an all-keyframe file moved before 0 counts frames its edit list drops (40 for 36). The frames shown are counted,
    with their timestamps, and decode equal to a sequential decode (they used to be taken as 30 or 40 frames
    without usable timestamps: a third of the video, or an error past the end)."""
    import av

    if kind == "fragmented":
        source = write_gop_video(tmp_path / "source.mp4", 95, 30.0, gop=30)
        path = remuxed(str(source), str(tmp_path / "fragmented.mp4"), movflags="frag_keyframe")
    else:
        source = write_gop_video(tmp_path / "source.mp4", 40, 30.0, gop=1, b_frames=0)
        path = remuxed(str(source), str(tmp_path / "shifted.mp4"), shift=-4 * 512)
    with av.open(path) as container:
        shown = len(list(container.decode(video=0)))
        header = container.streams.video[0].frames
    assert header != shown  # what the file's header says is not what decoders show
    with caplog.at_level(logging.WARNING):
        info = read_video_info(path)
    assert info.num_frames == shown and info.stream_index is not None and not caplog.records
    indices = [0, shown // 2, shown - 1]
    assert np.array_equal(decode_video_frames(path, indices, backend="pyav"), sequential_reference(path, indices))


def lying_sample_table(monkeypatch, shift_from: int) -> None:
    """The sample table's PTS moved by one tick from frame `shift_from` on (what a table that is not the packets'
    would give)."""
    derive = video_decoding._container_index_stamps

    def lying(container, stream):
        stamps = derive(container, stream)
        moved = [pts + (1 if pts >= stamps.pts[shift_from] else 0) for pts in stamps.pts]
        return replace(stamps, pts=moved, keyframe_pts=[moved[stamps.pts.index(k)] for k in stamps.keyframe_pts])

    monkeypatch.setattr(video_decoding, "_container_index_stamps", lying)


def test_a_sample_table_that_disagrees_with_the_packets_is_replaced_with_a_warning(gop_videos, monkeypatch, caplog):
    """Decoding checks a derived index against every packet it reads: a mismatch raises `IndexMismatch`; the
    processors and `decode_video_frames` then read every packet's timestamps, choose the frames again, and give the
    sequential frames and the true times."""
    path = gop_videos["vfr"]
    exact_frames, exact_metadata = prepare_videos(path, choose_indices=chooser(16), backend="pyav")
    lying_sample_table(monkeypatch, shift_from=45)
    lying = read_video_info(path, container_index=True).stream_index
    assert lying.from_container and lying.pts != read_video_info(path).stream_index.pts
    with pytest.raises(video_decoding.IndexMismatch, match=r"vfr\.mp4"):
        decode_frames(path, [3, 60], lying, "pyav")
    no_sequential_decoding(monkeypatch)
    with caplog.at_level(logging.WARNING):
        frames, metadata = prepare_videos(path, choose_indices=chooser(16), backend="pyav")
    assert metadata[0].frames_indices == exact_metadata[0].frames_indices
    assert metadata[0].timestamps == exact_metadata[0].timestamps
    assert np.array_equal(frames[0], exact_frames[0])
    (warning,) = [r.message for r in caplog.records]
    assert "sample table of video file" in warning and "vfr.mp4" in warning and "choosing the frames again" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        frames = decode_video_frames(path, [3, 60, 61], backend="pyav")
    assert np.array_equal(frames, sequential_reference(path, [3, 60, 61]))
    assert len(caplog.records) == 1


def test_a_broken_index_falls_back_to_sequential_with_a_warning(gop_videos, caplog):
    path = gop_videos["cfr_30"]
    index = read_video_info(path).stream_index  # read from every packet: trusted as is
    indices = [3, 40, 41, 89]
    reference = sequential_reference(path, indices)
    # Indexes that lie, and what the warning must say happened: every frame a keyframe (the seek lands on the real
    # keyframe before, and the frame at the promised PTS is a P- or B-frame), stamps that are not the file's (the
    # decoder never shows the promised frame), too few frames, and no keyframe at the start.
    lying = [
        (replace(index, keyframe_pts=list(index.pts)), "flags the frame at PTS 1536 as a keyframe, but the decoder"),
        (replace(index, pts=[pts + 7 for pts in index.pts]), "puts frame 3 at PTS 1543, but no decoded frame has"),
        (StreamIndex(pts=index.pts[:10], keyframe_pts=index.keyframe_pts), "frame 89 is past the 10 frames"),
        (replace(index, keyframe_pts=index.keyframe_pts[1:]), "frame 3 comes before its first keyframe"),
    ]
    for broken, what in lying:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            frames = decode_frames(path, indices, broken, "pyav")
        assert np.array_equal(frames, reference)
        (warning,) = [r.message for r in caplog.records]
        assert warning.startswith("Could not seek in video file") and "cfr_30.mp4" in warning and what in warning
        assert "Decoding it from the start instead: exact frames" in warning
        advice = "starts it with a keyframe" if "first keyframe" in what else "Remuxing it (`ffmpeg -i IN -c copy"
        assert advice in warning


def test_an_open_gop_file_seeks_to_its_recovery_points_exactly(tmp_path, monkeypatch, caplog):
    """x264's open GOPs: each keyframe after the first is an I-frame with a recovery point, and the two B-frames
    shown before it are decoded after it, from both groups of pictures."""
    path = str(write_gop_video(tmp_path / "open_gop.mp4", 120, 30.0, gop=30, open_gop=True))
    index = read_video_info(path, container_index=True).stream_index
    assert len(index.keyframe_pts) == 4
    # Its keyframes are not shown where their decoding position says: the sample table is not used for them.
    assert not index.from_container
    indices = [0, 28, 29, 30, 31, 58, 59, 60, 61, 119]  # each GOP's leading B-frames, its I-frame, the one after
    reference = sequential_reference(path, indices)
    no_sequential_decoding(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(decode_video_frames(path, indices, backend="pyav"), reference)
    assert not caplog.records


class _NotAKeyframe:
    """A decoded frame the decoder did not mark as a clean start (an open-GOP I-frame without a recovery point)."""

    def __init__(self, frame):
        self._frame, self.key_frame = frame, False

    def __getattr__(self, name):
        return getattr(self._frame, name)


def test_an_i_frame_the_decoder_cannot_start_from_is_named_in_the_warning(gop_videos, monkeypatch, caplog):
    path = gop_videos["cfr_30"]
    keyframe_at = read_video_info(path).stream_index.keyframe_pts[1]
    frames_for = video_decoding._frames_for

    def open_gop_frames(container, stream, *args):
        for frame in frames_for(container, stream, *args):
            yield _NotAKeyframe(frame) if frame.pts == keyframe_at else frame

    monkeypatch.setattr(video_decoding, "_frames_for", open_gop_frames)
    indices = [3, 40, 89]
    with caplog.at_level(logging.WARNING):
        frames = decode_frames(path, indices, read_video_info(path).stream_index, "pyav")
    assert np.array_equal(frames, sequential_reference(path, indices))
    (warning,) = [r.message for r in caplog.records]
    assert f"flags as a keyframe (PTS {keyframe_at}) is an I-frame the decoder cannot start from" in warning
    assert "open group of pictures" in warning and "Re-encoding it with closed groups of pictures" in warning
    assert "remuxing does not help" in warning


def test_skipping_non_reference_frames_keeps_the_pixels(gop_videos, monkeypatch):
    """On the run-up from a keyframe to a kept frame, non-reference B-frames are not decoded; the kept frames,
    B-frames among them, are pixel-equal to the sequential decode, with one decoder thread and with two."""
    import av

    path = gop_videos["long_gop_250"]
    with av.open(path) as container:
        kinds = [frame.pict_type for frame in container.decode(video=0)]
    indices = sorted([250, *range(40, 300, 23)])  # 250: the second keyframe
    assert {int(kinds[i]) for i in indices} == {1, 2, 3}  # I-, P- and B-frames among the kept ones
    reference = sequential_reference(path, indices)
    frames_for, decoded = video_decoding._frames_for, []

    def counted(container, stream, *args):
        for frame in frames_for(container, stream, *args):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(video_decoding, "_frames_for", counted)
    no_sequential_decoding(monkeypatch)
    index = read_video_info(path).stream_index
    for threads in (1, 2):
        decoded.clear()
        assert np.array_equal(decode_frames(path, indices, index, "pyav", threads=threads), reference)
        # Frames 0..indices[-1] are on the run-ups; a third of them are B-frames, and not all are references.
        run_up = indices[-1] + 1
        assert len(decoded) < 0.85 * run_up
        assert {index.pts[i] for i in indices} <= set(decoded)
        skipping = len(decoded)
    decoded.clear()  # without skipping: every frame of the run-ups, the same pixels
    assert np.array_equal(decode_frames(path, indices, index, "pyav", skip_nonref=False), reference)
    assert len(decoded) > skipping and len(decoded) >= 0.95 * run_up
    with pytest.raises(ValueError, match=r"threads must be >= 0.*long_gop_250\.mp4"):
        decode_frames(path, indices, index, "pyav", threads=-1)


def test_dataloader_workers_decode_with_one_thread_each(monkeypatch):
    """FFmpeg's own choice (cores + 1 frame threads) in every DataLoader worker would oversubscribe the cores. (A
    worker is what `get_worker_info` reports; no process is forked in a test process whose decoders ran.)"""
    import torch.utils.data

    assert video_decoding.default_decoder_threads() == 0  # the main process: FFmpeg's choice
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: types.SimpleNamespace(id=0, num_workers=2))
    assert video_decoding.default_decoder_threads() == 1


def test_a_stream_without_timestamps_says_so_and_decodes_sequentially(gop_videos, tmp_path, caplog):
    import av

    raw = tmp_path / "raw.h264"  # an elementary stream: its packets carry no timestamps
    with av.open(gop_videos["cfr_30"]) as source, av.open(str(raw), "w", format="h264") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    with caplog.at_level(logging.WARNING):
        frames, metadata = prepare_videos(str(raw), choose_indices=lambda total, fps: [0, 40, 89], backend="pyav")
    assert any("raw.h264" in r.message and "no usable presentation timestamps" in r.message for r in caplog.records)
    assert [float(f.mean()) for f in frames[0]] == pytest.approx([frame_gray_value(i) for i in (0, 40, 89)], abs=4)
    assert np.array_equal(frames[0], sequential_reference(gop_videos["cfr_30"], [0, 40, 89]))


def test_frames_past_the_end_name_the_file(gop_videos):
    with pytest.raises(ValueError, match=r"cfr_30\.mp4"):
        decode_video_frames(gop_videos["cfr_30"], [0, 500], backend="pyav")


def test_auto_backend_is_pyav_which_measured_faster(gop_videos):
    assert resolve_backend("pyav") == "pyav" and resolve_backend("torchcodec") == "torchcodec"
    assert resolve_backend(None) == resolve_backend("auto") == "pyav"  # also where torchcodec works


@pytest.fixture
def torchcodec_without_ffmpeg(monkeypatch):
    """torchcodec (0.17) as it imports on a machine without FFmpeg's shared libraries."""
    package, decoders = types.ModuleType("torchcodec"), types.ModuleType("torchcodec.decoders")
    package.ffmpeg_major_version, decoders.VideoDecoder = None, object
    package.decoders = decoders
    monkeypatch.setitem(sys.modules, "torchcodec", package)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", decoders)
    torchcodec_available.cache_clear()
    yield
    torchcodec_available.cache_clear()


def test_torchcodec_without_ffmpeg_counts_as_absent(gop_videos, torchcodec_without_ffmpeg):
    assert torchcodec_available() is False
    with pytest.raises(ImportError, match=r"cfr_30\.mp4.*FFmpeg 4-9 shared libraries.*'pyav'"):
        decode_video_frames(gop_videos["cfr_30"], [0, 1], backend="torchcodec")


@pytest.mark.skipif(not torchcodec_available(), reason="torchcodec is not installed or finds no FFmpeg (optional)")
@pytest.mark.parametrize("name", list(SOURCES))
def test_torchcodec_gives_the_same_frames(gop_videos, name):
    path = gop_videos[name]
    indices = [0, 7, 7, 30, SOURCES[name][0] - 1]
    frames = decode_video_frames(path, indices, backend="torchcodec")
    reference = sequential_reference(path, indices)
    assert frames.shape == reference.shape
    # Pixel-equal with Debian's FFmpeg 5.1 against PyAV's bundled 8.0; another build may convert to RGB its own way,
    # so each frame is held to within a few levels of the reference frame at its index (a neighbour is 8 off).
    per_frame = np.abs(frames.astype(int) - reference.astype(int)).mean(axis=(1, 2, 3))
    assert per_frame.max() < 3, per_frame
    unique = sorted(set(indices))  # returned without reordering
    assert np.array_equal(decode_video_frames(path, unique, backend="torchcodec"), frames[[0, 1, 3, 4]])


MEMORY_CHILD = """
import json, os, re, resource, sys
import numpy as np
from groundvts.processing import video_decoding
from groundvts.processing.video_sampling import FrameChoice, prepare_videos, read_video_info, uniform_step_positions

def data_bytes():
    return int(re.search(r"VmData:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

os.sched_setaffinity(0, {next(iter(os.sched_getaffinity(0)))})  # one decoder thread: the cap is the frames'
path, cap_mb, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "sequential":  # the fallback must be bounded too
    video_decoding._decode_by_seeking = lambda *args: (_ for _ in ()).throw(video_decoding._SeekFailed("test"))
cap = data_bytes() + cap_mb * 2**20
resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
info = read_video_info(path)
try:  # the cap must be too small for the whole decoded video, or the test proves nothing
    np.ones((info.num_frames, info.height, info.width, 3), np.uint8)
    whole_fits = True
except MemoryError:
    whole_fits = False
choose = lambda total, fps: FrameChoice(uniform_step_positions(total, 16))
frames, metadata = prepare_videos(path, choose_indices=choose, backend="pyav")
print(json.dumps({"whole_fits": whole_fits, "shape": list(frames[0].shape), "indices": metadata[0].frames_indices}))
"""


@pytest.mark.parametrize("mode", ["seek", "sequential"])
def test_memory_is_bounded_by_the_kept_frames(tmp_path_factory, mode):
    folder = tmp_path_factory.getbasetemp() / "long_video"
    path = folder / "long.mp4"
    if not path.exists():
        folder.mkdir(exist_ok=True)
        # 600 frames of 640x368: 424 MB decoded, 11 MB for the 16 kept frames; a 160 MB cap on the process's data.
        write_gop_video(path, 600, 30.0, (640, 368), gop=250)
    child = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(path), "160", mode], capture_output=True, text=True, timeout=600
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["whole_fits"] is False
    assert result["shape"] == [16, 368, 640, 3]
    assert result["indices"] == [k * 600 // 16 for k in range(16)]
