"""GroundVTS model code, flat and Hub-facing: `save_pretrained` copies these files next to the weights, so they use
relative imports only. Configs and models of GroundVTS-Q (Qwen2.5-VL) and GroundVTS-I (InternVL3.5), the shared
mixin, VTS itself, token removal and the pretrained M-RoPE positions."""
