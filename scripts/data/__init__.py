"""Training data: the Grounding-FT builder (benchmark annotations -> chat records) and, in `synthetic`, the synthetic
grounding videos, the synthetic benchmark pipeline and the bundling of the tiny default model."""
