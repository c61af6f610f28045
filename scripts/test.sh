#!/usr/bin/env bash
# Installs everything the test suite needs (Debian and Python packages) and runs the whole suite.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

# Debian packages: real Fashion-MNIST (idx .gz files under /usr/share/datasets/fashion-mnist).
if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q dataset-fashion-mnist
fi

# Debian packages: Chromium for the demo's browser test (driven by Playwright; never `playwright install`).
if ! command -v chromium >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
fi

python3 -m pip install -q -r requirements-test.txt
python3 -m pip install -q --no-deps -e .

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
python3 -m pytest "$@"
