"""The evaluate metrics, one folder each (`name/name.py` + its metric card `name/README.md`), loaded by path with
`evaluate.load`; the scripts are standalone so that they also run as Hub Spaces without groundvts."""
