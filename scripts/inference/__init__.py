"""Inference: load a GroundVTS model, ground a sentence in one video, answer benchmark queries in batches with a
resumable prediction store, score the predictions, and plot where VTS kept tokens."""
