"""Releases: assemble a Hub model folder (weights, remote code, processor, card with measured results), convert
official or plain-backbone checkpoints, merge LoRA adapters, and publish the metrics as evaluate Spaces."""
