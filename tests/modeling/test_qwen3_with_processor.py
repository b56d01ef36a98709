"""The GroundVTS-Q3 processor's outputs drive the model end to end (real video file, real chat template): only
`<|video_pad|>` tokens are sampled, every `<t seconds>` marker and vision start/end token reaches the LLM."""

import torch

from groundvts.modeling.modeling_groundvts_qwen3_vl import GroundVTSQwen3VLForConditionalGeneration
from groundvts.processing.prompts import prepare_inference_inputs
from groundvts.processing.tiny import build_tiny_qwen3_vl_processor, special_token_ids, write_test_video
from tiny_models import spread_vts_scores, tiny_qwen3_config_for


def test_processor_inputs_prune_generate_and_use_the_question(tmp_path):
    processor = build_tiny_qwen3_vl_processor()
    ids = special_token_ids(processor)
    torch.manual_seed(0)
    model = GroundVTSQwen3VLForConditionalGeneration(tiny_qwen3_config_for(processor)).eval()
    spread_vts_scores(model)
    video = write_test_video(tmp_path / "clip.mp4", num_frames=32, fps=4.0, size=(64, 64))  # 8 s, 8 patches
    inputs = prepare_inference_inputs(processor, "a person opens the door", str(video))
    assert inputs["query_mask"].sum() > 0
    patches, tokens_per_patch = int(inputs["video_grid_thw"][0][0]), int(inputs["video_grid_thw"][0][1:].prod()) // 4
    assert patches == 8 and tokens_per_patch == 4

    n_video = int((inputs["input_ids"] == ids["video_token_id"]).sum())
    with torch.no_grad():
        out = model(**inputs, use_cache=True, return_vts_selection=True)
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.past_key_values.get_seq_length() == inputs["input_ids"].shape[1] - (n_video - n_video // 2)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4
    not_video = inputs["input_ids"][0] != ids["video_token_id"]
    assert out.token_keep[0][not_video].all()  # timestamps and start/end tokens
    assert min(out.video_keep[0].view(patches, -1).sum(1).tolist()) >= 1  # every timestamp keeps a token

    other = prepare_inference_inputs(processor, "the dog sleeps on a red sofa", str(video))
    with torch.no_grad():
        other_scores = model(**other, return_vts_selection=True).video_scores[0]
    assert not torch.allclose(other_scores, out.video_scores[0], atol=1e-4)
