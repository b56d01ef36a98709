"""Training data: the Grounding-FT builder (benchmark annotations -> chat records), the loader that turns a recipe's
`data` section into a dataset (`training_data.py`: Grounding-FT or LLaVA-Video), and, in `synthetic`, the synthetic
grounding videos, the synthetic benchmark pipeline and the bundling of the tiny default model."""
