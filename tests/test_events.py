"""Events and phases (sql/35_events/): planted change points and phases in synthetic series are
found where they were planted, through the functions the warehouse runs and through the warehouse."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tdw.warehouse.sql_models import SQL_DIR, read_models


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"events_{name}", SQL_DIR / "35_events" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVENTS = load("metric_events")
PHASES = load("training_phases")


def test_planted_changes_of_course_are_found_within_a_grid_step():
    """Flat until 1000, falls to 4000, flat again, with noise: a collapse at 1000 and a settle at
    4000, each within two grid steps (2 x 10,000 / 200 epochs), dense checkpoints early as in a run."""
    rng = np.random.default_rng(0)
    epochs = np.unique(np.concatenate([np.arange(0, 500, 10), np.arange(500, 10_001, 50)]))
    values = np.interp(epochs, [0, 1000, 4000, 10_000], [3.0, 3.0, -2.0, -2.0]) + rng.normal(0, 0.02, len(epochs))
    found = EVENTS.events(epochs, values)
    kinds = {kind: epoch for kind, epoch, _ in found}
    assert set(kinds) == {"collapse", "settle"}, found
    step = 10_000 / EVENTS.GRID
    assert abs(kinds["collapse"] - 1000) <= 2 * step and abs(kinds["settle"] - 4000) <= 2 * step
    magnitude = next(m for kind, _, m in found if kind == "collapse")
    assert magnitude == pytest.approx(-5.0, abs=0.3)  # the fall, in the metric's units


def test_the_prefix_sum_cost_equals_ruptures_clinear_and_finds_the_same_breakpoints():
    """Our O(1) clinear cost (tdw/analysis/clinear_cost.py) against ruptures' own CostCLinear: the
    same cost on every segment PELT can try (to 1e-10), and the same breakpoints, on noisy series
    and on series interpolated between sparse checkpoints (exactly piecewise linear: ties)."""
    import ruptures

    from tdw.analysis.clinear_cost import PrefixSumCLinear

    rng = np.random.default_rng(1)
    grid = np.linspace(0, 1, EVENTS.GRID)
    for trial in range(12):
        knots = np.sort(rng.random(4))
        noise = rng.normal(0, 0.02, EVENTS.GRID) if trial % 2 else 0.0
        signal = np.interp(grid, np.concatenate([[0], knots, [1]]), rng.random(6)) + noise
        signal = (signal - signal.min()) / (signal.max() - signal.min())
        ours, theirs = PrefixSumCLinear().fit(signal), ruptures.costs.CostCLinear().fit(signal)
        for start in range(0, EVENTS.GRID - 3, 7):
            for end in range(start + 3, EVENTS.GRID + 1, 11):
                assert ours.error(start, end) == pytest.approx(theirs.error(start, end), abs=1e-9)
        found = ruptures.Pelt(custom_cost=PrefixSumCLinear(), min_size=EVENTS.MIN_SIZE, jump=1).fit(signal).predict(pen=EVENTS.PENALTY)
        reference = ruptures.Pelt(model="clinear", min_size=EVENTS.MIN_SIZE, jump=1).fit(signal).predict(pen=EVENTS.PENALTY)
        assert found == reference, trial


def test_a_rise_then_fall_is_an_onset_and_a_peak_and_a_flat_series_has_no_event():
    epochs = np.arange(0, 3001, 25)
    values = np.interp(epochs, [0, 500, 1500, 3000], [0.0, 0.0, 4.0, 1.0])
    found = EVENTS.events(epochs, values)
    assert ("peak", 1500) in [(k, e) for k, e, _ in found]
    onset = [e for k, e, _ in found if k == "onset"]
    assert len(onset) == 1 and abs(onset[0] - 500) <= 2 * 3000 / EVENTS.GRID
    assert EVENTS.events(epochs, np.full(len(epochs), 2.0)) == []


def test_a_three_phase_series_is_cut_into_its_phases():
    """Loss-like features planted with boundaries at 2,000 and 6,000 of 10,000 epochs: three phases
    come out in order, their boundaries within 3% of the run from the planted ones."""
    rng = np.random.default_rng(1)
    epochs = np.arange(0, 10_001, 50)
    level = np.select([epochs < 2000, epochs < 6000], [0.0, 1.0], 2.0)
    series = np.stack([level + rng.normal(0, 0.05, len(epochs)), -level + rng.normal(0, 0.05, len(epochs))], axis=1)
    PHASES.NAMES[3] = ("one", "two", "three")
    try:
        found = PHASES.phases(epochs, series, 3)
    finally:
        del PHASES.NAMES[3]
    assert [name for name, *_ in found] == ["one", "two", "three"]
    assert found[0][2] == 0 and found[-1][3] == 10_000
    assert abs(found[1][2] - 2000) <= 300 and abs(found[2][2] - 6000) <= 300


def test_landmarks_keep_early_phases_early_where_equal_slices_follow_a_slow_tail():
    """A fast grokker in a long run: phases planted at 400 and 1,000 of 6,000 epochs, and a weight
    measure still drifting until the end. From equal slices EM follows the drift and swallows both
    planted changes into the first phase; started at the run's landmarks (here 300 and 1,100, off
    the planted boundaries), it finds the planted boundaries."""
    rng = np.random.default_rng(1)
    epochs = np.arange(0, 6001, 25)
    level = np.select([epochs < 400, epochs < 1000], [0.0, 1.0], 2.0)
    drift = np.clip((epochs - 1000) / 5000, 0, 1) * 3
    series = np.stack([level + rng.normal(0, 0.05, len(epochs)),
                       drift + 0.3 * level + rng.normal(0, 0.05, len(epochs))], axis=1)
    PHASES.NAMES[3] = ("one", "two", "three")
    try:
        equal = PHASES.phases(epochs, series, 3)
        anchored = PHASES.phases(epochs, series, 3, (300, 1100))
    finally:
        del PHASES.NAMES[3]
    assert equal[0][3] >= 1000  # both planted changes inside the first phase
    assert abs(anchored[1][2] - 400) <= 75 and abs(anchored[2][2] - 1000) <= 75


def test_python_models_are_part_of_the_sql_project():
    models = {m.name: m for m in read_models()}
    for name in ("metric_events", "training_phases"):
        assert models[name].is_python and models[name].materialized == "table"
    assert models["metric_events"].grain == ("variant", "metric", "kind", "epoch")
    order = list(models)
    assert order.index("metric_series") < order.index("metric_events") < order.index("event_order") < order.index("event_summary")


LOOPS = load("trajectory_loops")


def test_a_loop_that_crosses_itself_is_told_from_one_that_does_not_and_rotation_changes_nothing():
    # (-1, 0) -> (1, 0) -> (1, 1) -> (0, 1) -> (0, -1): the last segment crosses the first at the
    # origin, enclosing the unit square; the path is 6 long, so the normalized area is 1/36
    loop = np.array([[-1.0, 0], [1, 0], [1, 1], [0, 1], [0, -1]])
    epochs = np.array([0, 100, 200, 300, 400])
    measured = LOOPS.loop_measures(epochs, loop)
    assert measured["self_intersects"] and (measured["loop_start_epoch"], measured["loop_close_epoch"]) == (0, 400)
    assert measured["loop_area"] == pytest.approx(1 / 36) and measured["path_length"] == pytest.approx(6)
    assert measured["max_excursion_from_start"] == pytest.approx(np.hypot(2, 1) / 6)
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = LOOPS.loop_measures(epochs, 3.5 * loop @ rotation.T * np.array([1, -1]))  # rotated, scaled, reflected
    for key in ("self_intersects", "loop_start_epoch", "loop_close_epoch", "loop_area", "max_excursion_from_start",
                "max_excursion_from_end"):
        assert turned[key] == pytest.approx(measured[key]), key
    theta = np.linspace(0, 1.8 * np.pi, 40)  # an opening spiral never crosses itself
    spiral = np.column_stack([(1 + theta) * np.cos(theta), (1 + theta) * np.sin(theta)])
    open_path = LOOPS.loop_measures(np.arange(40), spiral)
    assert not open_path["self_intersects"] and open_path["loop_area"] is None


def test_the_share_of_inputs_graduated_is_a_series_its_events_are_found_on(study):
    """metric_series carries graduation_curve's shares as graduated_train and graduated_test, row for
    row, so the change points, the event order and the cross-variant summary read them like any
    other measure (on the published run the test inputs' first onset is at 11,500, before the turn
    at 12,848; on the 4-seed study a median 168 epochs before it)."""
    from tdw.warehouse import query

    series = query("select variant, metric, epoch, value from metric_series where metric like 'graduated_%' "
                   "order by all", study)
    curve = query("select variant, 'graduated_' || split as metric, epoch, graduated_fraction as value "
                  "from graduation_curve order by all", study)
    assert series.height > 0 and series.equals(curve)
    events = query("select distinct variant, metric from metric_events where metric like 'graduated_%'", study)
    assert set(events["metric"]) == {"graduated_train", "graduated_test"}
