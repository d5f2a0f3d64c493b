# SPDX-License-Identifier: MIT
# Sourced by scripts/demo.sh, prune_table.sh and trim_table.sh: the held-out text they measure on.
#
# mixed_eval_text CORPUS_DIR BYTES OUT_FILE: the first BYTES bytes of every CORPUS_DIR/eval/*.txt,
# each cut at its last complete line, one after the other in OUT_FILE.
mixed_eval_text() {
  local corpus="$1" bytes="$2" out="$3" f
  : > "$out"
  for f in "$corpus"/eval/*.txt; do
    head -c "$bytes" "$f" | sed '$d' >> "$out"
    printf '\n' >> "$out"
  done
}
