"""What a job does, in a few words, from the parameters it was created with.

The job lists (`tdw jobs`, the dashboard's Train and Analyze pages) showed a kind and a variant,
so the dashboard's "Trace this input" job, a full analysis and an LLC pass over a few epochs all
read "analyze p113_seed999". One function says it for both lists.
"""

from __future__ import annotations

from typing import Any


def job_task(kind: str, params: dict[str, Any] | None) -> str:
    """'traces + 4+29', 'llc at 13 epochs (step calibrated)', '25,000 epochs, stacked with 8', '4 variants,
    analyzed'."""
    params = params or {}
    if kind == "analyze":
        return analysis_task(params)
    if kind == "train":
        config = params.get("config") or {}
        words = [f"{config['num_epochs']:,} epochs"] if "num_epochs" in config else []
        if (params.get("stacked_with") or 1) > 1:
            words.append(f"stacked with {params['stacked_with'] - 1}")
        if params.get("extend"):
            words.append("extending")
        if params.get("analyze"):
            words.append("then analyzed")
        return ", ".join(words)
    if kind == "sweep":
        variants = params.get("variants") or []
        words = [f"{len(variants)} variant{'s' if len(variants) != 1 else ''}"]
        if params.get("analyze"):
            words.append("analyzed")
        return ", ".join(words)
    return ""


def analysis_task(params: dict[str, Any]) -> str:
    analyzers = params.get("analyzers")
    if params.get("trace_add"):
        words = [f"traces + {params['trace_add']}"]
    elif params.get("trace"):
        words = [f"traces of {params['trace']}"]
    else:
        words = [", ".join(analyzers) if analyzers else "every analyzer"]
    epochs = params.get("epochs")
    if epochs:
        words.append(f"at {len(epochs)} epoch{'s' if len(epochs) != 1 else ''}")
    if params.get("force"):
        words.append("forced")
    step = params.get("llc_step")
    if step:
        words.append("(step calibrated)" if step == "auto" else f"(step x{step})")
    return " ".join(words)
