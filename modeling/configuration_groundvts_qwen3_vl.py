"""GroundVTS-Q3 configuration: Qwen3-VL plus the VTS hyper-parameters (Hub-facing, flat)."""

from transformers import Qwen3VLConfig

from .vts import validate_vts_config


class GroundVTSQwen3VLConfig(Qwen3VLConfig):
    r"""Qwen3-VL configuration with Visual Token Sampling between the vision merger and the LLM.

    Qwen3-VL writes `<t seconds>` before every temporal patch (2 frames) of a video, then `<|vision_start|>`, the
    patch's `<|video_pad|>` tokens and `<|vision_end|>`. VTS samples only the `<|video_pad|>` tokens (the
    timestamp text and the start/end tokens always stay), with one budget per video over all its patches; a
    "frame" below is one temporal patch (its merged h x w tokens).

    vts_reduction_dim (`int`, defaults to 512): D_r, the width of the scoring projections Wv and Wq.
    vts_keep_ratio (`float`, defaults to 0.5): rho; each video keeps K = ceil(rho * N) of its N tokens.
    vts_temperature (`float`, defaults to 1.0): tau in w = softmax(Wv v . Wq q / tau).
    vts_gumbel_temperature (`float`, defaults to 1.0): tau_g of the training-time Gumbel-softmax.
    vts_weight_temperature (`float`, defaults to 1.0): tau' of the re-weighting ŵ (eq. 7).
    vts_strategy (`str`, defaults to "token"): "token" (VTS), "frame" (whole temporal patches by mean relevance),
        "uniform" (evenly spaced temporal patches), "random" (random tokens), "parameter_free" (cosine relevance,
        no weights) or "dense" (no sampling). All sampling strategies keep the same budget rho.
    vts_train_selection (`str`, defaults to "gumbel"): "gumbel" (the paper's straight-through
        estimator) or "topk" (deterministic top-K, gradients only through ŵ).
    vts_keep_positions (`bool`, defaults to True): kept tokens keep their Qwen3-VL M-RoPE (t, h, w) positions;
        False re-indexes them contiguously (the paper's "w/o PE" ablation).
    vts_query_pooling (`str`, defaults to "query_mask"): "query_mask" averages the processor's
        question tokens; "prompt" averages every prompt token outside the vision tokens.
    vts_min_tokens_per_frame (`int`, defaults to 1): every temporal patch keeps at least this many of its tokens
        (its best by the strategy's scores) within the budget K, so no `<t seconds>` marker is left pointing at
        nothing; 0 turns the floor off. Applies to the token-level strategies ("token", "random",
        "parameter_free"); "frame" and "uniform" keep or drop whole patches by definition. A video whose patches
        need more than K tokens raises an error naming this field.

    DeepStack: the kept tokens' DeepStack features (added to the first decoder layers' hidden states) are gathered
    with the same keep mask but not re-weighted by ŵ: ŵ sums to 1 over the K kept tokens, so scaling would shrink
    the pretrained DeepStack residuals about K-fold, while the main features pass through the VTS MLP, which learns
    that scale.
    """

    model_type = "groundvts_qwen3_vl"

    vts_reduction_dim: int = 512
    vts_keep_ratio: float = 0.5
    vts_temperature: float = 1.0
    vts_gumbel_temperature: float = 1.0
    vts_weight_temperature: float = 1.0
    vts_strategy: str = "token"
    vts_train_selection: str = "gumbel"
    vts_keep_positions: bool = True
    vts_query_pooling: str = "query_mask"
    vts_min_tokens_per_frame: int = 1

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # A plain Qwen3-VL config.json says model_type "qwen3_vl"; loaded into this class it becomes ours.
        self.__dict__.pop("model_type", None)
        validate_vts_config(self)


__all__ = ["GroundVTSQwen3VLConfig"]
