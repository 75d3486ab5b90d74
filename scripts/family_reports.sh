#!/bin/bash
# One FAST report per registry family with its tiny config (issue 20's acceptance run), resumable: a family whose
# OUT_DIR/<family>/reports/summary.json exists is skipped. Notebook 09 does not read MODEL and is left out (run it once).
#   usage: scripts/family_reports.sh OUT_DIR [family ...]   (default: every family in the registry)
# Each family's report log is OUT_DIR/<family>.log; OUT_DIR/done.txt gets one line per family: exit code, wall seconds.
set -u
out=${1:?usage: scripts/family_reports.sh OUT_DIR [family ...]}; shift
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
families=("$@")
[ ${#families[@]} -eq 0 ] && mapfile -t families < <($PY -c "from vaestudy.registry import FAMILIES; print('\n'.join(FAMILIES))")
notebooks=$(ls notebooks/[0-9][0-9]_*.ipynb | xargs -n1 basename | grep -v '^09_')
mkdir -p "$out"
for f in "${families[@]}"; do
  [ -f "$out/$f/reports/summary.json" ] && continue
  start=$(date +%s)
  HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} $PY -m vaestudy report --fast --model "$f" --weights tiny --jobs 2 \
    --out-dir "$out/$f" --notebooks $notebooks > "$out/$f.log" 2>&1
  echo "$f rc=$? $(( $(date +%s) - start )) s" >> "$out/done.txt"
done
