#!/usr/bin/env bash
# Set up a rented GPU box (vast.ai, or any machine with an NVIDIA image that ships torch) and start training in
# the background, resuming from the Hub after a restart.
#
#   export HF_TOKEN=...   # or set it in the vast.ai instance template's environment; never on the command line
#   bash scripts/vastai_setup.sh --task pose --hub-repo user/pgpg-run --preset pgpg_thesis --data synthetic
#   bash scripts/vastai_setup.sh --task style --hub-repo user/style-run --dry-run      # print the commands only
#   bash scripts/vastai_setup.sh --task generation --hub-repo user/sg2 -- --max-steps 200000 --mixed-precision bf16
#
# Steps: clone (or update) the repository; `pip install -e .` (the package's loose dependencies: the image's torch
# is kept; requirements.txt pins torch and is not used here); check the Hub token from $HF_TOKEN; start
# `accelerate launch scripts/train.py ... --hub-repo REPO --resume latest` under tmux (else nohup), one process
# per GPU.  Re-running the script on a fresh box continues the run from the newest checkpoint in REPO.
# Options after `--` go to scripts/train.py unchanged.
set -euo pipefail

REPO_URL="https://github.com/fashion-gans/fashion-gans"
REF="main"
WORKSPACE="${WORKSPACE:-/workspace}"
SRC=""
TASK=""
PRESET=""
DATA="synthetic"
HUB_REPO=""
RUN_DIR=""
GPUS=""
SESSION="fashion-gans"
DRY_RUN=0
TRAIN_ARGS=()

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --task TASK          pose | garment | style | generation (required)
  --hub-repo REPO      Hub model repo for checkpoints, samples and resume (user/name, or file:/dir) (required)
  --preset NAME        model preset (default: the task's small preset)
  --data DATA          synthetic | fashion-mnist | hf:user/dataset | a folder on this box (default: synthetic)
  --run-dir DIR        run folder (default: $WORKSPACE/runs/<task>)
  --gpus N             training processes (default: the number of GPUs nvidia-smi lists, at least 1)
  --repo-url URL       repository to clone (default: the project's GitHub repository)
  --ref REF            branch or tag (default: main)
  --src DIR            checkout folder (default: $WORKSPACE/fashion-gans; an existing checkout is updated)
  --session NAME       tmux session / log name (default: fashion-gans)
  --dry-run            print the commands instead of running them
  -h, --help           this help
EOF
}

die() { echo "vastai_setup.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --task) TASK="${2:?--task needs a value}"; shift 2 ;;
    --hub-repo) HUB_REPO="${2:?--hub-repo needs a value}"; shift 2 ;;
    --preset) PRESET="${2:?--preset needs a value}"; shift 2 ;;
    --data) DATA="${2:?--data needs a value}"; shift 2 ;;
    --run-dir) RUN_DIR="${2:?--run-dir needs a value}"; shift 2 ;;
    --gpus) GPUS="${2:?--gpus needs a value}"; shift 2 ;;
    --repo-url) REPO_URL="${2:?--repo-url needs a value}"; shift 2 ;;
    --ref) REF="${2:?--ref needs a value}"; shift 2 ;;
    --src) SRC="${2:?--src needs a value}"; shift 2 ;;
    --session) SESSION="${2:?--session needs a value}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; TRAIN_ARGS=("$@"); break ;;
    *) die "unknown option '$1' (see --help; options for scripts/train.py go after --)" ;;
  esac
done

case "$TASK" in
  pose|garment|style|generation) ;;
  "") die "--task is required (pose, garment, style or generation)" ;;
  *) die "--task '$TASK': expected pose, garment, style or generation" ;;
esac
[ -n "$HUB_REPO" ] || die "--hub-repo is required: the run's checkpoints live there, so a new box resumes from it"
case "$GPUS" in
  ""|*[!0-9]*|0) [ -z "$GPUS" ] || die "--gpus '$GPUS': expected a positive whole number" ;;
esac
if [[ "$HUB_REPO" != file:* ]] && [ -z "${HF_TOKEN:-}" ]; then
  die "HF_TOKEN is not set: export it (or add it to the instance template's environment) to upload to $HUB_REPO"
fi

SRC="${SRC:-$WORKSPACE/fashion-gans}"
RUN_DIR="${RUN_DIR:-$WORKSPACE/runs/$TASK}"
if [ -z "$GPUS" ]; then
  GPUS=1
  if command -v nvidia-smi >/dev/null 2>&1; then
    found="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
    [ "${found:-0}" -gt 0 ] && GPUS="$found"
  fi
fi
PYTHON="$(command -v python3 || command -v python || true)"
[ -n "$PYTHON" ] || die "no python3 on this machine"

# Print a command (shell-quoted) and run it, or only print it with --dry-run.
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

# 1. The code.
if [ -d "$SRC/.git" ]; then
  run git -C "$SRC" pull --ff-only origin "$REF"   # stops (keeping local changes) if the checkout diverged
else
  run git clone --depth 1 --branch "$REF" "$REPO_URL" "$SRC"
fi

# 2. The package, keeping the image's torch (requirements.txt pins torch; pyproject's bounds are loose).
if [ "$DRY_RUN" = 0 ] && ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  echo "note: this image has no torch; pip will install the default build from PyPI" >&2
fi
run "$PYTHON" -m pip install -q -e "$SRC"

# 3. The Hub token: taken from $HF_TOKEN by huggingface_hub in every process (never printed, never stored here).
if [[ "$HUB_REPO" != file:* ]]; then
  run "$PYTHON" -c 'from huggingface_hub import whoami; print("Hub user:", whoami()["name"])'
fi

# 4. Training under tmux (or nohup), one process per GPU, resuming from the Hub repo's newest checkpoint.
LAUNCH=("$PYTHON" -m accelerate.commands.launch --num_processes "$GPUS")
[ "$GPUS" -gt 1 ] && LAUNCH+=(--multi_gpu)
TRAIN=("${LAUNCH[@]}" "$SRC/scripts/train.py" --task "$TASK" --data "$DATA" --output-dir "$RUN_DIR"
       --hub-repo "$HUB_REPO" --resume latest)
[ -n "$PRESET" ] && TRAIN+=(--preset "$PRESET")
TRAIN+=("${TRAIN_ARGS[@]+"${TRAIN_ARGS[@]}"}")

LOG="$WORKSPACE/$SESSION.log"
COMMAND="$(printf '%q ' "${TRAIN[@]}")"
run mkdir -p "$(dirname "$RUN_DIR")" "$WORKSPACE"
if command -v tmux >/dev/null 2>&1; then
  run tmux new-session -d -s "$SESSION" "cd $(printf '%q' "$SRC") && $COMMAND 2>&1 | tee -a $(printf '%q' "$LOG")"
  echo "training in tmux session '$SESSION' (attach: tmux attach -t $SESSION; log: $LOG)"
else
  printf '+ cd %q && nohup %s>> %q 2>&1 &\n' "$SRC" "$COMMAND" "$LOG"
  if [ "$DRY_RUN" = 0 ]; then
    (cd "$SRC" && nohup "${TRAIN[@]}" >> "$LOG" 2>&1 &)
  fi
  echo "training under nohup (log: $LOG)"
fi
echo "checkpoints and samples go to $HUB_REPO; run this script again on a new box to continue"
