"""Science regression on the published run: p=113, seed 999, data seed 598, 30% train, 25,000 epochs
(`../shared/runs/p113_seed999`, which CI has beside the clone). Findings a researcher would check
first must hold: the turn precedes grok inside the test loss's fall, the key frequencies are the
neuron clusters', the progress measures tell Nanda et al.'s story, the MLP ends specialized.

To stay fast it analyzes only what these checks read: progress at 13 checkpoints, the neuron
frequencies and key frequencies at the last one. The run is linked, never written: artifacts go to
a temporary run directory whose `checkpoints` is a link to the shared folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tdw.analysis.pipeline import AnalysisPipeline
from tdw.warehouse import build_index, query

PUBLISHED = Path(__file__).resolve().parents[2] / "shared/runs/p113_seed999"
FINAL = 24_999
PROGRESS_EPOCHS = [0, 1500, 3000, 5000, 7000, 9000, 10_000, 11_000, 12_000, 13_000, 14_000, 15_000, FINAL]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    results = tmp_path_factory.mktemp("published") / "results"
    run = results / "modular_addition" / "p113_seed999"
    run.mkdir(parents=True)
    for name in ("config.json", "metadata.json", "losses.parquet"):
        shutil.copy(PUBLISHED / name, run / name)
    (run / "checkpoints").symlink_to(PUBLISHED / "checkpoints", target_is_directory=True)
    pipeline = AnalysisPipeline(run)
    pipeline.run(["progress"], PROGRESS_EPOCHS, progress=False)
    pipeline.run(["neuron_freq", "embedding_fourier", "singular_values"], [FINAL], progress=False)
    pipeline.run(["key_frequencies"], progress=False)
    db = results.parent / "warehouse" / "tdw.duckdb"
    build_index(results, db)
    return db


def measures(db: Path) -> dict[str, dict[int, float]]:
    frame = query("select epoch, measure, value from progress order by epoch", db)
    out: dict[str, dict[int, float]] = {}
    for epoch, measure, value in frame.iter_rows():
        out.setdefault(measure, {})[epoch] = value
    return out


def test_turn_precedes_grok_inside_the_fall_of_the_test_loss(published):
    summary = query("select * from variant_summary", published).row(0, named=True)
    turn = query("select * from grokking_turn", published).row(0, named=True)
    assert summary["grok_epoch"] == 14_847 and summary["turn_epoch"] == turn["turn_epoch"]
    assert turn["peak_epoch"] < turn["turn_epoch"] < turn["grok_epoch"]
    at_turn = query(f"select loss, accuracy from losses where split = 'test' and epoch = {turn['turn_epoch']}", published).row(0)
    plateau = query("select loss from losses where split = 'test' and epoch = 10000", published).item()
    assert at_turn[0] < 0.8 * plateau and at_turn[1] < 0.5  # falling, but not yet generalized
    assert turn["grok_epoch"] - turn["turn_epoch"] < 0.2 * FINAL


def test_key_frequencies_are_the_five_neuron_clusters(published):
    keys = query("select key_frequencies, key_frequency_count from variant_summary", published).row(0)
    clusters = query(f"select frequency from neuron_clusters where epoch = {FINAL} order by 1", published)
    assert keys == ([9, 19, 36, 38, 41], 5)
    assert clusters["frequency"].to_list() == [9, 19, 36, 38, 41]


def test_progress_measures_use_the_final_key_frequencies_at_every_epoch(published):
    counts = measures(published)["key_frequency_count"]
    assert sorted(counts) == PROGRESS_EPOCHS and set(counts.values()) == {5.0}


def test_restricted_loss_falls_long_before_the_test_loss(published):
    m = measures(published)
    restricted = m["restricted_loss"]
    turn = query("select turn_epoch from grokking_turn", published).item()
    test = dict(query("select epoch, loss from losses where split = 'test'", published).iter_rows())
    # by epoch 9,000 the key-frequency part of the logits alone nearly solves the task ...
    assert restricted[9000] < 0.2 * restricted[0] and restricted[9000] < restricted[1500] / 2
    # ... while the test loss is still far above where it started
    assert test[9000] > 4 * test[0]
    assert 9000 < turn - 3000
    # and it keeps falling monotonically through circuit formation
    steps = [restricted[e] for e in (1500, 3000, 5000, 7000, 9000, 11_000, 13_000)]
    assert steps == sorted(steps, reverse=True)


def test_excluded_loss_rises_during_circuit_formation(published):
    excluded = measures(published)["excluded_loss"]
    # memorized at 1,500: removing the key frequencies costs nothing on the train set yet ...
    assert excluded[1500] < 1e-3
    # ... then the train set comes to depend on them (Nanda et al. 2023, figure 7)
    assert excluded[9000] > 100 * excluded[1500] and excluded[13_000] > 100 * excluded[9000]


def test_mlp_ends_specialized(published):
    fraction = query("select specialized_fraction from variant_summary", published).item()
    assert fraction > 0.8


def test_the_event_timeline_says_how_far_each_event_lies_from_the_turn(published):
    """The Events view's hover: each mark's series, size and distance from the turn (12,848), as
    event_order has them; the restricted loss's first event (11,000) comes before the turn."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # (the views set Bokeh options)

    from dashboards.store import WarehouseStore
    from dashboards.views import get_view

    turn = query("select turn_epoch from grokking_turn", published).item()
    expected = sorted(query("select metric, epoch, magnitude from event_order", published).iter_rows())
    store = WarehouseStore(published)
    try:
        timeline = get_view("event_timeline").render(store, "p113_seed999")
    finally:
        store.close()
    drawn = []
    for layer in timeline:
        if isinstance(layer, hv.Scatter):
            columns = layer.columns()
            assert list(columns["from_turn"]) == [f"{epoch - turn:+,}" for epoch in columns["epoch"]]
            drawn += zip(columns["metric"], columns["epoch"], columns["magnitude"], strict=True)
    assert sorted(drawn) == expected
    restricted = [epoch for metric, epoch, _ in drawn if metric == "log10_restricted_loss"]
    assert min(restricted) == 11_000 < turn
