"""GroundVTS-Q configuration: Qwen2.5-VL plus the VTS hyper-parameters (Hub-facing, flat)."""

from transformers import Qwen2_5_VLConfig

from .vts import validate_vts_config


class GroundVTSQwen2_5_VLConfig(Qwen2_5_VLConfig):
    r"""Qwen2.5-VL configuration with Visual Token Sampling between the vision merger and the LLM.

    vts_reduction_dim (`int`, defaults to 512): D_r, the width of the scoring projections Wv and Wq.
    vts_keep_ratio (`float`, defaults to 0.5): rho; each video keeps K = ceil(rho * N) of its N tokens.
    vts_temperature (`float`, defaults to 1.0): tau in w = softmax(Wv v . Wq q / tau).
    vts_gumbel_temperature (`float`, defaults to 1.0): tau_g of the training-time Gumbel-softmax.
    vts_weight_temperature (`float`, defaults to 1.0): tau' of the re-weighting ŵ (eq. 7); the official
        code uses one temperature for tau and tau'.
    vts_strategy (`str`, defaults to "token"): "token" (VTS), "frame" (whole frames by mean relevance),
        "uniform" (evenly spaced frames), "random" (random tokens), "parameter_free" (cosine relevance,
        no weights), "temporal_redundancy", "centre_distance" or "dense" (no sampling). All sampling strategies
        keep the same budget rho (K = ceil(rho * N) per video); kept tokens keep their dense positions.
        Training-free, query-agnostic baselines (what serving engines ship; the kept tokens reach the LLM unchanged,
        no VTS weight is used):
        - "temporal_redundancy" (Efficient Video Sampling, EVS, as vLLM applies it to the projected video tokens;
          Bagrov et al., "Efficient Video Sampling: Pruning Temporally Redundant Tokens for Faster VLM Inference",
          arXiv 2510.14624, which measures the change on pixels): each token scores
          1 - cos(v[t, i], v[t-1, i]), its dissimilarity to the same spatial patch of the previous frame
          (temporal step); the first frame scores +inf; one global top-K per video (ties: earlier token first), so
          the first frame is kept whole whenever K covers it.
        - "centre_distance" (VidCom²; Liu et al., "Video Compression Commander: Plug-and-Play Inference
          Acceleration for Video Large Language Models", EMNLP 2025, arXiv 2505.14454): frame t's uniqueness u_t is
          the mean cosine distance of its tokens to the video-level mean feature; frame t's share of the budget is
          1 + softmax(u / 0.01)_t - 1/F; every frame keeps one token and the rest of K is apportioned by share
          (largest remainders, capped at the frame size), so exactly K tokens per video and at least one per frame
          (when K < F, one token in each of the K most unique frames). In each frame the kept tokens are those with
          the largest (1 - cos(v, video mean)) + (1 - cos(v, frame mean)).
    vts_train_selection (`str`, defaults to "gumbel"): "gumbel" (the paper's straight-through
        estimator) or "topk" (the official code's deterministic top-K, gradients only through ŵ).
    vts_keep_positions (`bool`, defaults to True): kept tokens keep their dense-sampling M-RoPE positions;
        False re-indexes them contiguously (the paper's "w/o PE" ablation).
    vts_query_pooling (`str`, defaults to "query_mask"): "query_mask" averages the processor's
        question tokens; "prompt" averages every prompt token outside the vision tokens (the official
        code's choice, for converted official weights).
    """

    model_type = "groundvts_qwen2_5_vl"

    vts_reduction_dim: int = 512
    vts_keep_ratio: float = 0.5
    vts_temperature: float = 1.0
    vts_gumbel_temperature: float = 1.0
    vts_weight_temperature: float = 1.0
    vts_strategy: str = "token"
    vts_train_selection: str = "gumbel"
    vts_keep_positions: bool = True
    vts_query_pooling: str = "query_mask"

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # A plain Qwen2.5-VL config.json says model_type "qwen2_5_vl"; loaded into this class it becomes ours.
        self.__dict__.pop("model_type", None)
        validate_vts_config(self)
