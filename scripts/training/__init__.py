"""Training stages from recipes: read a recipe YAML with `--set` overrides into the GroundVTS SFT config, model, data
and trainer of one stage (stage 1, 2 or 3), and run it."""
