"""Speed and memory benchmarks on one harness: prefill (dense vs VTS vs the official mask-only path) and one training
step, each variant measured in its own process, ratios printed side by side and written as JSON."""
