"""Summaries over seeds: the t quantile against scipy, CI arithmetic, JSON shape, verdict."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from scipy import stats as scipy_stats

from fake_runs import make_record, make_records
from initlab.results.records import InitSummary, Stat
from initlab.results.summary import (
    cis_overlap,
    format_stat,
    stat,
    summarize,
    summary_from_dict,
    summary_json,
    verdict,
)
from initlab.results.tdist import betainc, t_cdf, t_ppf


@pytest.mark.parametrize("df", [*range(1, 61), 75, 99, 150, 250, 999, 0.5, 2.5])
@pytest.mark.parametrize("p", [0.975, 0.995, 0.9, 0.6, 0.025, 0.999999])
def test_t_quantile_matches_scipy(df, p):
    assert t_ppf(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-12)


@pytest.mark.parametrize("df", [1, 2, 3, 7, 30, 200])
@pytest.mark.parametrize("t", [-40.0, -2.5, -0.1, 0.0, 0.3, 1.96, 12.7])
def test_t_cdf_and_betainc_match_scipy(df, t):
    from scipy import special

    assert t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-12, abs=1e-15)
    x = (t + 41.0) / 82.0
    assert betainc(df / 2, 1.5, x) == pytest.approx(special.betainc(df / 2, 1.5, x), rel=1e-12)


def test_t_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError):
        t_ppf(1.0, 3)
    with pytest.raises(ValueError):
        t_ppf(0.9, 0)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_ci_half_width_matches_scipy_interval(n):
    values = [0.9 + 0.013 * math.sin(7.0 * i) for i in range(n)]
    s = stat(values)
    assert s.mean == pytest.approx(statistics.fmean(values), rel=1e-15)
    assert s.std == pytest.approx(statistics.stdev(values), rel=1e-13)
    lo, hi = scipy_stats.t.interval(0.95, n - 1, loc=s.mean, scale=scipy_stats.sem(values))
    assert s.ci95 == pytest.approx((hi - lo) / 2, rel=1e-10)


def test_stat_skips_non_finite_values_but_keeps_them_listed():
    s = stat([1.0, math.nan, 3.0, None, math.inf])
    assert s.mean == 2.0 and s.std == pytest.approx(math.sqrt(2))
    assert len(s.values) == 5 and math.isnan(s.values[3])
    one = stat([0.5])
    assert one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.ci95)
    assert math.isnan(stat([]).mean)


def test_summarize_groups_by_init_in_order_of_first_appearance():
    records = make_records(inits=("b_init", "a_init"), seeds=3)
    records = [records[4], records[0], records[3], records[1], records[5], records[2]]
    out = summarize(records)
    assert [s.init for s in out] == ["a_init", "b_init"]
    a = out[0]
    a_runs = sorted((r for r in records if r.config.init == "a_init"), key=lambda r: r.config.seed)
    assert a.seeds == 3 and a.diverged == 0
    assert a.test_accuracy.values == [r.test_accuracy for r in a_runs]  # seed order
    assert a.final_train_loss.mean == pytest.approx(
        statistics.fmean(r.final_train_loss for r in a_runs)
    )


def test_summarize_counts_divergence_and_unreached_targets():
    runs = [make_record("x", 0, diverge_at=10), make_record("x", 1, floor=1.5)]
    runs.append(make_record("x", 2, floor=1.5))
    (s,) = summarize(runs)
    assert s.diverged == 1
    assert math.isnan(s.final_train_loss.values[0])
    assert s.final_train_loss.mean == pytest.approx(
        statistics.fmean(r.final_train_loss for r in runs[1:])
    )
    assert s.steps_to_target is None  # no seed got below 0.5


def test_summary_json_shape_is_exactly_the_documented_one():
    summaries = summarize(make_records(seeds=2) + [make_record("he_normal", 7, diverge_at=5)])
    data = summary_json(summaries)
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN anywhere
    assert list(data) == ["inits"]
    for entry in json.loads(text)["inits"]:
        assert set(entry) == {
                "init", "seeds", "final_train_loss", "test_accuracy", "val_loss", "diverged",
                "stopped",
            }  # fmt: skip
        for key in ("final_train_loss", "test_accuracy"):
            assert set(entry[key]) == {"mean", "ci95", "values"}
            assert len(entry[key]["values"]) == entry["seeds"]
    he = data["inits"][-1]
    assert he["init"] == "he_normal" and he["diverged"] == 1 and he["seeds"] == 3
    assert he["final_train_loss"]["values"][2] is None


def test_summary_dict_round_trip():
    for s in summarize(make_records(seeds=3)):
        assert summary_from_dict(json.loads(json.dumps(s.to_dict()))) == s


def _summary(init: str, values: list[float]) -> InitSummary:
    s = stat(values)
    return InitSummary(init, len(values), stat([0.1] * len(values)), s, None, 0)


def test_verdict_names_winner_margin_and_separated_cis():
    a = _summary("he_normal", [0.934, 0.936, 0.932])
    b = _summary("lecun_normal", [0.910, 0.912, 0.908])
    c = _summary("normal:std=0.01", [0.11, 0.12, 0.113])
    text = verdict([c, b, a])
    assert text.startswith("he_normal has the best mean test accuracy (0.9340 ± 0.0050")
    assert "0.0240 above the runner-up lecun_normal" in text
    assert text.endswith("their 95% CIs do not overlap.")
    assert cis_overlap(a.test_accuracy, b.test_accuracy) is False


def test_verdict_says_not_established_when_cis_overlap():
    a = _summary("he_normal", [0.934, 0.90, 0.95])
    b = _summary("lecun_normal", [0.92, 0.93, 0.91])
    text = verdict([a, b])
    assert "he_normal has the best" in text and "runner-up lecun_normal" in text
    assert text.endswith("their 95% CIs overlap, so the difference is not established.")


def test_verdict_with_one_seed_or_one_init():
    one_seed = verdict([_summary("a", [0.9]), _summary("b", [0.8])])
    assert "not established" in one_seed
    assert "only init" in verdict([_summary("a", [0.9, 0.91])])
    assert "no verdict" in verdict([])


def test_format_stat():
    assert format_stat(Stat(0.93456, 0.01, 0.00213, [])) == "0.9346 ± 0.0021"
    assert format_stat(Stat(0.5, math.nan, math.nan, [0.5])) == "0.5000"
    assert format_stat(None) == "—"
