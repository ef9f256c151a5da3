"""benchmarks/cpu_evidence.sh's record keeping (its functions, sourced under the script's own
shell options): a sweep's older-budget records and tables move to the archive before it
starts, and the harvest copies finished power runs without ever overwriting another
budget's record of the same run id."""

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _record(d: Path, preset: str, result: str) -> None:
  d.mkdir(parents=True)
  (d / "config.json").write_text(json.dumps({"preset": preset}, indent=2))
  (d / "result.json").write_text(result)


def _bash(cwd: Path, calls: str, py: str = "true") -> subprocess.CompletedProcess:
  script = ROOT / "benchmarks" / "cpu_evidence.sh"
  functions = "\n".join(  # the functions, not the script's sweeps
      subprocess.run(["sed", "-n", f"/^{name}()/,/^}}/p", str(script)], capture_output=True,
                     text=True, check=True).stdout
      for name in ("archive_quick", "harvest", "run_in", "run", "run_lab"))
  return subprocess.run(["bash", "-c", f"set -uo pipefail\nPY='{py}'\n{functions}\n{calls}"],
                        cwd=cwd, capture_output=True, text=True, check=True)


def test_archive_then_harvest_keeps_every_record(tmp_path):
  records = tmp_path / "results" / "records" / "s"
  for i in range(40):  # enough names that `grep -L` outlives a reader that stops early
    _record(records / f"m{i}-seed0", "quick", "quick")
  (tmp_path / "results" / "s.md").write_text("quick table")
  _record(tmp_path / "results" / "records" / "t" / "m-seed0", "power", "power")
  _record(tmp_path / "runs" / "s-power" / "runs" / "m0-seed0", "power", "new")
  _bash(tmp_path, "archive_quick s; archive_quick t")
  archive = tmp_path / "results" / "archive" / "quick_1seed"
  assert len(list((archive / "records" / "s").iterdir())) == 40
  assert (archive / "s.md").read_text() == "quick table" and not records.exists()
  assert (tmp_path / "results" / "records" / "t" / "m-seed0").is_dir()  # power: stays
  _bash(tmp_path, "harvest")
  assert (records / "m0-seed0" / "result.json").read_text() == "new"
  # a record of another budget under the same run id is never overwritten
  _record(tmp_path / "results" / "records" / "u" / "m-seed0", "quick", "old")
  _record(tmp_path / "runs" / "u-power" / "runs" / "m-seed0", "power", "new")
  out = _bash(tmp_path, "harvest")
  assert (tmp_path / "results" / "records" / "u" / "m-seed0" / "result.json").read_text() == "old"
  assert "another budget's record" in out.stderr


def test_a_lab_variant_harvests_into_its_own_records(tmp_path):
  # run_lab's workdir (runs/lab_<name>-power, its sweep named in lab_sweep) goes to
  # results/lab/<name>/records/<sweep>/, never into the sweep's own committed records.
  work = tmp_path / "runs" / "lab_exact-power"
  _record(work / "runs" / "m-seed0", "power", "exact")
  (work / "lab_sweep").write_text("s\n")
  _record(tmp_path / "results" / "records" / "s" / "m-seed0", "power", "committed")
  _bash(tmp_path, "harvest")
  assert (tmp_path / "results" / "lab" / "exact" / "records" / "s" / "m-seed0" / "result.json"
          ).read_text() == "exact"
  assert (tmp_path / "results" / "records" / "s" / "m-seed0" / "result.json"
          ).read_text() == "committed"
  assert not (tmp_path / "results" / "records" / "lab_exact").exists()
  # run_lab resumes from the lab's power records (not the sweep's) and passes its flags on
  _record(tmp_path / "results" / "lab" / "e2" / "records" / "s" / "m-seed1", "power", "x")
  out = _bash(tmp_path, 'run_lab e2 s "0.25," --config.exact_epochs=True', py="echo")
  assert out.stdout.split() == ["main.py", "--config=configs/s.py:power",
                                "--workdir=runs/lab_e2-power", "--config.sweep.width=(0.25,)",
                                "--config.exact_epochs=True"]
  assert (tmp_path / "runs" / "lab_e2-power" / "runs" / "m-seed1").is_dir()
  assert (tmp_path / "runs" / "lab_e2-power" / "lab_sweep").read_text() == "s\n"
  # a sweep's own run reuses what other sweeps recorded (main.py --reuse)
  out = _bash(tmp_path, 'run s -', py="echo")
  assert out.stdout.split() == ["main.py", "--config=configs/s.py:power",
                                "--workdir=runs/s-power", "--reuse=results/records"]
