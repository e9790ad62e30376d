"""Analysis: turn checkpoints into tidy Parquet facts. See pipeline.py and tdw/analyzers/."""

from tdw.analysis.pipeline import AnalysisPipeline

__all__ = ["AnalysisPipeline"]
