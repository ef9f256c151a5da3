"""Statistics of the tables: intervals, paired/Welch gaps, power, and the power CLI."""

import math

import pytest
from scipy import stats as st

from experiments import power, stats


def test_mean_ci_is_the_t_interval():
  m, lo, hi = stats.mean_ci([1.0, 2.0, 3.0, 4.0])
  half = st.t.ppf(0.975, 3) * st.tstd([1, 2, 3, 4]) / 2
  assert m == 2.5 and lo == pytest.approx(2.5 - half) and hi == pytest.approx(2.5 + half)
  assert stats.mean_ci([7.0]) == (7.0, 7.0, 7.0)


def test_paired_gap_uses_the_per_seed_differences():
  a = {0: 10.0, 1: 12.0, 2: 11.0, 3: 13.0}
  b = {0: 9.5, 1: 11.2, 2: 10.9, 3: 12.1}
  g = stats.compare(a, b)
  assert g.test == "paired t" and g.n == 4
  assert g.p == pytest.approx(st.ttest_rel(list(a.values()), list(b.values())).pvalue)
  assert g.gap == pytest.approx(0.575) and g.low < g.gap < g.high
  # The same values unpaired (no shared seeds): Welch, a wider interval and a larger p.
  w = stats.compare(a, {s + 10: v for s, v in b.items()})
  assert w.test == "Welch t" and w.p > g.p and (w.high - w.low) > (g.high - g.low)
  assert w.p == pytest.approx(st.ttest_ind(list(a.values()), list(b.values()),
                                           equal_var=False).pvalue)
  # Partly shared seeds: paired on the shared ones.
  part = stats.compare(a, {0: 9.5, 1: 11.2, 2: 10.9})
  assert part.test == "paired t" and part.n == 3
  assert stats.compare({}, b) is None


def test_pairings_correlation_is_pearsons_r_for_equal_spreads_and_pools_by_dof():
  a = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
  assert stats.compare(a, {s: v + 0.5 for s, v in a.items()}).r == pytest.approx(1.0)
  independent = stats.compare({0: 0.0, 1: 1.0, 2: 0.0, 3: 1.0}, {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0})
  assert independent.r == pytest.approx(0.0)  # the differences vary as much as unpaired arms
  b = {0: 2.0, 1: 1.0, 2: 4.0, 3: 3.0}  # same spread as a
  g = stats.compare(a, b)
  assert g.r == pytest.approx(st.pearsonr(list(a.values()), list(b.values())).statistic)
  assert g.sd_unpaired == pytest.approx(math.sqrt(2 * st.tvar(list(a.values()))))
  # pooled: 1 - sum(dof * var_diff) / sum(dof * (var_a + var_b)) over the paired gaps
  assert stats.pooled_r([g, independent]) == pytest.approx(
      1 - (3 * g.sd ** 2 + 3 * independent.sd ** 2)
      / (3 * g.sd_unpaired ** 2 + 3 * independent.sd_unpaired ** 2))
  welch = stats.compare(a, {s + 10: v for s, v in b.items()})
  assert welch.r is None and stats.pooled_r([welch]) is None


def test_power_and_minimal_detectable_gap_agree_with_each_other_and_the_textbook():
  mdg = stats.minimal_detectable_gap(1.0, 6)
  assert stats.power(mdg, 1.0, 6) == pytest.approx(0.8, abs=1e-6)
  # Normal-approximation textbook value (t quantiles): (t_.975 + t_.8) * sd / sqrt(n).
  approx = (st.t.ppf(0.975, 5) + st.t.ppf(0.8, 5)) / math.sqrt(6)
  assert mdg == pytest.approx(approx, rel=0.03)
  n = stats.seeds_needed(0.5, 1.0)
  assert stats.power(0.5, 1.0, n) >= 0.8 > stats.power(0.5, 1.0, n - 1)
  assert stats.minimal_detectable_gap(1.0, 6, paired=False) > mdg  # Welch needs more
  assert stats.minimal_detectable_gap(1.0, 1) is None


def test_holm_rejects_in_order():
  assert stats.holm([0.01, 0.04, 0.03, 0.2]) == [True, False, False, False]
  assert stats.holm([0.001, 0.01, 0.02]) == [True, True, True]


def test_power_cli(capsys):
  assert power.main(["--sd", "1.0", "--n", "6", "--delta", "0.5"]) == 0
  out = capsys.readouterr().out
  assert "minimal detectable gap 1.43" in out and f"{stats.seeds_needed(0.5, 1.0)} seeds" in out
  assert power.main(["--sd", "1.0", "--n", "1"]) == 2
  assert "--n=1" in capsys.readouterr().err
  assert power.main(["--sd", "1.0"]) == 2  # neither --delta nor --n


def test_a_tables_findings_state_what_pairing_bought():
  from experiments import tables
  a = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
  g = stats.compare(a, {0: 2.0, 1: 1.0, 2: 4.0, 3: 3.0})  # r = 0.6
  lines = tables.gap_findings([g], "rows", "Shuffle lowers the error")
  assert lines[-1] == ("Pairing: the arms' per-seed values correlate r = +0.60 (pooled over "
                       "the rows), so the paired test needs 0.40x the seeds of an unpaired one.")
  welch = stats.compare(a, {10: 2.0, 11: 1.0, 12: 4.0})
  assert not any(line.startswith("Pairing") for line in tables.gap_findings([welch], "rows", "x"))


def test_a_gap_prints_its_p_value_as_an_equation_or_a_bound():
  assert str(stats.Gap(1.0, 0.5, 1.5, 0.0123, 6, "paired t", 0.4)).endswith(" p=0.012")
  assert str(stats.Gap(1.0, 0.5, 1.5, 2e-5, 6, "paired t", 0.4)).endswith(" p<0.001")


def test_power_from_records_states_the_pairing_the_table_states(capsys):
  from pathlib import Path
  root = Path(__file__).resolve().parents[1] / "results"
  assert power.main(["--records", str(root / "records" / "ablation_shuffle"), "--n", "6"]) == 0
  r_line = [line for line in capsys.readouterr().out.splitlines() if "correlate" in line]
  table = (root / "ablation_shuffle.md").read_text()
  r = table.split("per-seed values correlate r = ")[1].split(" ")[0]
  assert len(r_line) == 1 and r_line[0].startswith(
      f"the arms' per-seed values correlate r = {r}: the paired design needs "), r_line
