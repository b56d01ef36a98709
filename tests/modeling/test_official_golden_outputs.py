"""The converted official checkpoints reproduce what the official GroundVTS code produced on them.

`shared/fixtures/official_groundvts/` holds tiny random checkpoints saved by the official GroundVTS-Q and GroundVTS-I
classes, the inputs, and the official outputs (see its README). Each checkpoint goes through our converter and is
loaded the way users load it (`trust_remote_code`); the converted config selects the official query pooling
("prompt") and deterministic top-K, so selection, re-weighting, positions and logits must agree with the official
code to float noise. Where the official code is wrong (GroundVTS-Q's decode-time leak; GroundVTS-I re-selecting with
the generated text in its query) the tests pin down exactly how we differ.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from shared_data import SHARED_FIXTURES, require_shared
from transformers import AutoModelForImageTextToText, Qwen2_5_VLModel

from groundvts.scripts.release.convert import convert_checkpoint

GOLDEN = SHARED_FIXTURES / "official_groundvts"
ATOL = 1e-5
Q_CASES = ("single_i1", "single_i2", "rowB_i1")
I_CASES = ("single", "rowB")


class Golden:
    """One backbone's converted model with the official inputs and outputs, split by case."""

    def __init__(self, folder, tmp_root):
        folder = require_shared(GOLDEN / folder)
        converted = convert_checkpoint(folder / "official_checkpoint", tmp_root / "converted")
        self.model = AutoModelForImageTextToText.from_pretrained(converted, trust_remote_code=True).eval()
        self.inputs = _by_case(load_file(folder / "inputs.safetensors"))
        self.outputs = _by_case(load_file(folder / "official_outputs.safetensors"))

    def run(self, case: str):
        """Prefill of one case: the model output and what VTS received and returned."""
        seen = {}

        def capture(module, args, result):
            seen.update(videos=args[0], queries=args[1], selections=result)

        hook = self.model.model.vts.register_forward_hook(capture)
        try:
            with torch.no_grad():
                out = self.model(**self.inputs[case], return_vts_selection=True)
        finally:
            hook.remove()
        return out, seen


def _by_case(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    cases: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        case, name = key.split(".", 1)
        cases.setdefault(case, {})[name] = value
    return cases


@pytest.fixture(scope="module")
def golden_q(tmp_path_factory):
    return Golden("groundvts_q", tmp_path_factory.mktemp("golden_q"))


@pytest.fixture(scope="module")
def golden_i(tmp_path_factory):
    return Golden("groundvts_i", tmp_path_factory.mktemp("golden_i"))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    error = (actual.float() - expected.float()).abs().max().item()
    assert error <= ATOL, f"{what}: max abs error {error:.2e} > {ATOL:.0e}"


def assert_prefill_matches(golden: Golden, case: str) -> torch.Tensor:
    """keep equal; scores, query, projector output, kept embeddings and logits at every position that reached the
    language model within 1e-5. Returns the (L,) mask of those positions."""
    expected = golden.outputs[case]
    out, seen = golden.run(case)
    keep = out.video_keep[0]
    assert torch.equal(keep.long(), expected["keep"]), "keep mask"
    assert int(keep.sum()) == (keep.numel() + 1) // 2  # K = ceil(0.5 N) tokens physically kept
    assert_close(out.video_scores[0], expected["scores"][0], "relevance scores")
    assert_close(seen["queries"][0], expected["query"][0], "pooled query")
    assert_close(seen["videos"][0], expected["projector_output"], "projector output")
    assert_close(seen["selections"][0].embeds, expected["kept_embeds_reweighted"][keep], "re-weighted kept embeddings")
    reached = out.token_keep[0]
    assert_close(out.logits[0, reached], expected["logits"][0, reached], "prefill logits")
    return reached


@pytest.mark.parametrize("case", Q_CASES)
def test_groundvts_q_prefill_matches_official(golden_q, case):
    assert_prefill_matches(golden_q, case)


@pytest.mark.parametrize("case", Q_CASES)
def test_groundvts_q_positions_match_official(golden_q, case):
    inputs, expected = golden_q.inputs[case], golden_q.outputs[case]["position_ids"]
    positions, _ = golden_q.model.model.get_rope_index(
        inputs["input_ids"], inputs["mm_token_type_ids"], video_grid_thw=inputs["video_grid_thw"],
        second_per_grid_ts=inputs["second_per_grid_ts"], attention_mask=inputs["attention_mask"],
    )
    assert torch.equal(positions, expected)
    # What the language model saw: the kept tokens at exactly those positions, in order.
    out, _ = golden_q.run(case)
    reached = out.token_keep[0]
    assert torch.equal(out.pruned_position_ids[-3:, 0], expected[:, 0, reached])


def test_stock_rule_differs_only_where_the_video_outlasts_its_frame(golden_q):
    """The fixture's README: stock 5.23 positions agree with the pretrained rule when the temporal extent equals the
    spatial one (single_i1) and start the text after the video too early otherwise (single_i2: 13 instead of 16)."""
    stock_rope_index = Qwen2_5_VLModel.get_rope_index
    for case, agree in (("single_i1", True), ("single_i2", False)):
        inputs = golden_q.inputs[case]
        stock, _ = stock_rope_index(
            golden_q.model.model, inputs["input_ids"], inputs["mm_token_type_ids"],
            video_grid_thw=inputs["video_grid_thw"], second_per_grid_ts=inputs["second_per_grid_ts"],
            attention_mask=inputs["attention_mask"],
        )
        assert torch.equal(stock, golden_q.outputs[case]["position_ids"]) is agree, case
    after_video = int(torch.nonzero(inputs["mm_token_type_ids"][0] == 2).max()) + 1
    assert golden_q.outputs["single_i2"]["position_ids"][0, 0, after_video + 1].item() == 16 + 1
    assert stock[0, 0, after_video + 1].item() == 13 + 1


@pytest.mark.parametrize("case", Q_CASES)
def test_groundvts_q_greedy_generation_matches_official_without_its_leak(golden_q, case):
    inputs, expected = golden_q.inputs[case], golden_q.outputs[case]
    steps = expected["generate_leakfix_tokens"].shape[1]
    with torch.no_grad():
        out = golden_q.model.generate(
            **inputs, max_new_tokens=steps, min_new_tokens=steps, do_sample=False,
            output_logits=True, return_dict_in_generate=True,
        )
    tokens = out.sequences[:, inputs["input_ids"].shape[1]:]
    assert torch.equal(tokens, expected["generate_leakfix_tokens"])
    assert_close(torch.stack(out.logits, dim=1), expected["generate_leakfix_logits"], "greedy step logits")
    # The official generate lets decode steps attend to the dropped tokens (its KV cache keeps them): it agrees
    # with a correct implementation on the first token only.
    official = expected["generate_official_tokens"]
    assert torch.equal(official[:, :1], tokens[:, :1])
    assert not torch.equal(official[:, 1:], tokens[:, 1:])


@pytest.mark.parametrize("case", I_CASES)
def test_groundvts_i_prefill_matches_official(golden_i, case):
    assert_prefill_matches(golden_i, case)


@pytest.mark.parametrize("case", I_CASES)
def test_groundvts_i_first_greedy_token_matches_official(golden_i, case):
    inputs, official = golden_i.inputs[case], golden_i.outputs[case]["generate_nocache_tokens"]
    with torch.no_grad():
        out = golden_i.model.generate(
            **inputs, max_new_tokens=1, do_sample=False, output_logits=True, return_dict_in_generate=True
        )
    assert torch.equal(out.sequences[:, -1:], official[:, :1])
    assert_close(out.logits[0], golden_i.outputs[case]["generate_nocache_logits"][:, 0], "first step logits")


@pytest.mark.parametrize("case", I_CASES)
def test_official_groundvts_i_tokens_come_from_reselecting_with_the_answer_in_the_query(golden_i, case):
    """The official GroundVTS-I generates only without a cache, re-running VTS each step with the generated text
    inside its query. A manual loop of full forwards that does the same reproduces its tokens, which is how we know
    the later official tokens are that drift and not something our select-once generate should match."""
    inputs, official = golden_i.inputs[case], golden_i.outputs[case]["generate_nocache_tokens"]
    ids, types = inputs["input_ids"], inputs["mm_token_type_ids"]
    with torch.no_grad():
        for _ in range(official.shape[1]):
            logits = golden_i.model(
                input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=types,
                pixel_values=inputs["pixel_values"], video_num_frames=inputs["video_num_frames"],
            ).logits
            ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=1)
            types = torch.cat([types, torch.zeros_like(types[:, :1])], dim=1)
    assert torch.equal(ids[:, inputs["input_ids"].shape[1]:], official)
