"""Source package of the pipetool classifier example.

`features` and `train` are imported by pipetool as callables (`src.features:build`,
`src.train:train`); `prepare.py` and `evaluate.py` are scripts run by shell commands.
"""
