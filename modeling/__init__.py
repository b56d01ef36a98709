"""GroundVTS model code, flat and Hub-facing: `save_pretrained` copies these files next to the weights, so they use
relative imports only. Configs and models of GroundVTS-Q (Qwen2.5-VL), GroundVTS-Q3 (Qwen3-VL) and GroundVTS-I
(InternVL3.5), the shared mixins (family-wide and Qwen-VL), VTS itself, token removal and the pretrained M-RoPE
positions."""
