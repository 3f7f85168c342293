#!/usr/bin/env bash
# Installs everything gamegpt needs (Debian's stockfish, the CPU build of torch, the package itself with
# its test tools), then runs the main job on the shipped default model. Idempotent: safe to re-run.
#   bash setup.sh              # install + evaluate the shipped tic-tac-toe model
#   bash setup.sh --install-only
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v stockfish >/dev/null 2>&1 && [ ! -x /usr/games/stockfish ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq stockfish >/dev/null
fi

PYTHON=${PYTHON:-python3}
# Pin torch first: an unpinned torch would pull several GB of CUDA packages.
"$PYTHON" -m pip install -q "torch==2.13.0"
# The ray extra too, so that CI runs the Ray tests (tests/test_ray.py); users need it only for --ray.
"$PYTHON" -m pip install -q -e ".[test,ray]"

if [ "${1:-}" != "--install-only" ]; then
  gamegpt eval tictactoe --model tictactoe --temperatures 0,1 --games 200 --out results/eval-tictactoe
fi
