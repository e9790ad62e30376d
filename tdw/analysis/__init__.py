"""Analysis: turn checkpoints into tidy Parquet facts. The pipeline is `tdw.analysis.pipeline`; the
analyzers it runs are one file each in `tdw/analyzers/`."""
