"""The GroundVTS-Q processor's outputs drive the model end to end (real video file, real chat template)."""

import torch

from groundvts.modeling.modeling_groundvts_qwen2_5_vl import GroundVTSQwen2_5_VLForConditionalGeneration
from groundvts.processing.prompts import prepare_inference_inputs
from groundvts.processing.tiny import build_tiny_qwen2_5_vl_processor, special_token_ids, write_test_video
from tiny_models import spread_vts_scores, tiny_qwen_config_for


def test_processor_inputs_prune_generate_and_use_the_question(tmp_path):
    processor = build_tiny_qwen2_5_vl_processor()
    ids = special_token_ids(processor)
    config = tiny_qwen_config_for(processor)
    torch.manual_seed(0)
    model = GroundVTSQwen2_5_VLForConditionalGeneration(config).eval()
    spread_vts_scores(model)
    video = write_test_video(tmp_path / "clip.mp4", num_frames=16, fps=4.0)  # 4 s
    inputs = prepare_inference_inputs(processor, "a person opens the door", str(video))
    assert inputs["query_mask"].sum() > 0

    n_video = int((inputs["input_ids"] == ids["video_token_id"]).sum())
    with torch.no_grad():
        out = model(**inputs, use_cache=True, return_vts_selection=True)
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.past_key_values.get_seq_length() == inputs["input_ids"].shape[1] - (n_video - (n_video + 1) // 2)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4

    # A different question changes the relevance scores: the query really comes from the question.
    other = prepare_inference_inputs(processor, "the dog sleeps on a red sofa", str(video))
    with torch.no_grad():
        other_scores = model(**other, return_vts_selection=True).video_scores[0]
    assert not torch.allclose(other_scores, out.video_scores[0], atol=1e-4)
