"""Analysis: turn checkpoints into tidy Parquet facts. See pipeline.py and tdw/analyzers/."""


def __getattr__(name: str):
    if name == "AnalysisPipeline":  # lazy: analyzers import tdw.analysis.analyzer at load time
        from tdw.analysis.pipeline import AnalysisPipeline

        return AnalysisPipeline
    raise AttributeError(name)


__all__ = ["AnalysisPipeline"]
