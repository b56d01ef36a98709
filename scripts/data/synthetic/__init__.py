"""Synthetic grounding data and experiments: scene generator and videos, the tower pre-task, the token-selection
benchmark run from scratch on CPU, and bundling its model as the embedded GroundVTS-tiny."""
