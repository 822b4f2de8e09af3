"""pipeline.yaml -> a validated, frozen model (load, schema, params, interpolation)."""
from .model import Dep, Pipeline, Target

__all__ = ["Dep", "Pipeline", "Target"]
