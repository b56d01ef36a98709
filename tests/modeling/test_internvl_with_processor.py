"""The GroundVTS-I processor's outputs drive the model end to end (real video file, real chat template)."""

import torch

from groundvts.modeling.modeling_groundvts_internvl import GroundVTSInternVLForConditionalGeneration
from groundvts.processing.prompts import build_inference_prompt, prepare_inference_inputs
from groundvts.processing.tiny import build_tiny_internvl_processor, write_test_video
from tiny_models import spread_vts_scores, tiny_internvl_config_for


def test_processor_inputs_prune_generate_and_use_the_question(tmp_path):
    processor = build_tiny_internvl_processor(image_size=56, patch_size=14, num_frames=4)  # 4 tokens per frame
    config = tiny_internvl_config_for(processor)
    torch.manual_seed(0)
    model = GroundVTSInternVLForConditionalGeneration(config).eval()
    spread_vts_scores(model)
    video = str(write_test_video(tmp_path / "clip.mp4", num_frames=16, fps=4.0))
    inputs = prepare_inference_inputs(processor, "a person opens the door", video)
    assert inputs["video_num_frames"].tolist() == [4] and inputs["query_mask"].sum() > 0

    n_video = int((inputs["mm_token_type_ids"] == 2).sum())
    assert n_video == 4 * processor.image_seq_length
    with torch.no_grad():
        out = model(**inputs, use_cache=True, return_vts_selection=True)
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.past_key_values.get_seq_length() == inputs["input_ids"].shape[1] - (n_video - (n_video + 1) // 2)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4

    # A different question changes the relevance scores: the query really comes from the question.
    other = prepare_inference_inputs(processor, "the dog sleeps on a red sofa", video)
    with torch.no_grad():
        other_scores = model(**other, return_vts_selection=True).video_scores[0]
    assert not torch.allclose(other_scores, out.video_scores[0], atol=1e-4)

    # A left-padded batch of two questions on the same video generates like each question alone.
    questions = ("a person opens the door", "the small brown dog sleeps quietly on a big red sofa near the window")
    prompts = [build_inference_prompt(processor, q, "mr") for q in questions]
    batch = processor(text=prompts, videos=[video, video], padding=True, return_tensors="pt")
    assert batch["video_num_frames"].tolist() == [4, 4] and not batch["attention_mask"].all()
    with torch.no_grad():
        together = model.generate(**batch, max_new_tokens=3, do_sample=False)[:, -3:]
        for row, prompt in enumerate(prompts):
            single = processor(text=[prompt], videos=[video], return_tensors="pt")
            alone = model.generate(**single, max_new_tokens=3, do_sample=False)[0, -3:]
            assert torch.equal(together[row], alone), row
