"""The documentation's promises that code can check: the README fits one screen, every
committed table is in the results index, every design-note citation points at a section
that exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_fits_on_one_screen():
  assert len((ROOT / "README.md").read_text().splitlines()) <= 120


def test_every_committed_table_is_in_the_results_index():
  index = (ROOT / "results" / "README.md").read_text()
  missing = [p.name for p in sorted((ROOT / "results").iterdir())
             if p.name != "README.md" and (p.is_dir() or p.suffix == ".md")
             and f"`{p.name}" not in index and f"{p.name}/" not in index]
  assert not missing, f"results/README.md does not list {missing}"


def test_design_citations_name_existing_sections():
  sections = set(re.findall(r"^## (\d+)\. ", (ROOT / "docs" / "design.md").read_text(), re.M))
  cited = {}
  for path in ROOT.glob("**/*.py"):
    if ".venv" in path.parts:
      continue
    for n in re.findall(r"design\.md section (\d+)", path.read_text()):
      cited.setdefault(n, []).append(str(path.relative_to(ROOT)))
  assert cited  # the pattern still matches how the code cites
  unknown = {n: files for n, files in cited.items() if n not in sections}
  assert not unknown, f"citations of missing docs/design.md sections: {unknown}"
