"""variant_summary's outlier test (sql/40_summaries/variant_summary.sql) on planted variants with
hand-computed robust z-scores (`planted_sql`: the view's own SQL over planted tables)."""

from __future__ import annotations

import pytest
from planted_sql import run_model

# (variant, family, turn_to_grok (None: never groks), specialized fraction, max cos/sin imbalance, key count)
PLANTED = [
    # three variants: two imbalances that happen to agree, a third at 2.1. Median 1.027, MAD 0.010:
    # 1.088 / (1.4826 * 0.010) made it z = 73.4; with the floor, 1.088 / (0.1 * 1.027) = 10.6
    ("a1", "three", 690, 0.43, 1.017, 4),
    ("a2", "three", 624, 0.37, 2.115, 6),
    ("a3", "three", 974, 0.30, 1.027, 3),
    # five variants, key counts 5, 5, 5, 6, 20: MAD 0, so the z of 20 was 0; with the floor
    # (0.1 * 5) it is 15 / 0.5 = 30.0, and 6 is 1 / 0.5 = 2.0, no outlier. b5 never groks where
    # four do. Their turn_to_grok, 1000 +- 100: MAD 100, 148.26 over the floor's 100.
    ("b1", "five", 900, 0.80, 1.0, 5),
    ("b2", "five", 1000, 0.80, 1.0, 5),
    ("b3", "five", 1100, 0.80, 1.0, 5),
    ("b4", "five", 1000, 0.80, 1.0, 6),
    ("b5", "five", None, 0.80, 1.0, 20),
    # two variants: never compared, however far apart
    ("c1", "two", 100, 0.10, 1.0, 1),
    ("c2", "two", 9000, 0.90, 9.0, 30),
]


def variant_summary(planted: list[tuple], lifecycle: list[tuple] = ()) -> dict[str, dict]:
    tables = {
        "variants": ("variant varchar, family varchar, p integer, seed bigint, status varchar",
                     [(v, family, 13, seed, "complete") for seed, (v, family, *_) in enumerate(planted)]),
        "grokking_turn": ("variant varchar, memorization_epoch integer, turn_epoch integer, grok_epoch integer, turn_to_grok integer",
                          [(v, 10, 100, None if t is None else 100 + t, t) for v, _, t, *_ in planted]),
        "neuron_specialization": ("variant varchar, epoch integer, specialized_fraction double",
                                  [(v, 5000, specialized) for v, _, _, specialized, *_ in planted]),
        # the largest imbalance on the first key frequency
        "key_frequencies": ("variant varchar, epoch integer, frequency smallint, rule varchar",
                            [(v, 5000, k, "embedding_gap") for v, *_, keys in planted for k in range(1, keys + 1)]),
        "cos_sin_balance": ("variant varchar, epoch integer, frequency smallint, imbalance double",
                            [(v, 5000, k, imbalance if k == 1 else 1.0)
                             for v, *_, imbalance, keys in planted for k in range(1, keys + 1)]),
        "losses": ("variant varchar, epoch integer, split varchar, loss double", []),
        "participation_ratio": ("variant varchar, epoch integer, matrix varchar, participation_ratio double", []),
        "llc": ("variant varchar, epoch integer, component varchar, statistic varchar, value float", []),
        "metric_events": ("variant varchar, metric varchar, kind varchar, epoch integer", []),
        "graduation_curve": ("variant varchar, epoch integer, split varchar, graduated_fraction double", []),
        "frequency_lifecycle": ("variant varchar, frequency smallint, first_epoch integer", list(lifecycle)),
    }
    rows = run_model("variant_summary", tables).select("variant", "outlier", "outlier_measures", "first_cluster_epoch")
    return {variant: {"outlier": outlier, "measures": measures, "first_cluster_epoch": first}
            for variant, outlier, measures, first in rows.rows()}


def test_outliers_are_robust_z_scores_with_a_floor_on_the_spread():
    summary = variant_summary(PLANTED)
    assert summary["a2"]["outlier"] and summary["a2"]["measures"] == ["max_cos_sin_imbalance (z=10.6)"]
    assert summary["b5"]["outlier"] and summary["b5"]["measures"] == ["key_frequency_count (z=30.0)", "never groks"]
    flagged = sorted(variant for variant, row in summary.items() if row["outlier"])
    assert flagged == ["a2", "b5"]
    assert all(row["measures"] == [] for variant, row in summary.items() if variant not in flagged)


@pytest.mark.parametrize("turn_to_grok, flagged", [(1518, False), (1519, True)])
def test_a_slow_grokker_is_an_outlier_past_3_5_robust_deviations(turn_to_grok, flagged):
    """Turn to grok 900, 1000, 1000, 1100 and a fifth beyond: median 1000, deviations 100, 0, 0,
    100 and the fifth's, so the MAD is 100 and the spread 148.26 (over the floor's 100). The fifth
    is an outlier past 1000 + 3.5 * 148.26 = 1518.9 (z = 519 / 148.26 = 3.50)."""
    planted = [(f"d{i}", "five", t, 0.8, 1.0, 5) for i, t in enumerate((900, 1000, 1000, 1100, turn_to_grok))]
    summary = variant_summary(planted)
    assert summary["d4"]["outlier"] is flagged
    assert summary["d4"]["measures"] == (["turn_to_grok (z=3.5)"] if flagged else [])


def test_the_first_cluster_is_the_earliest_any_frequency_forms():
    """first_cluster_epoch: the earliest first_epoch of the run's frequency_lifecycle rows (NULL
    for a run whose neurons never form one)."""
    summary = variant_summary(PLANTED[:3], lifecycle=[("a1", 5, 300), ("a1", 9, 200), ("a2", 4, 700)])
    assert [summary[v]["first_cluster_epoch"] for v in ("a1", "a2", "a3")] == [200, 700, None]
