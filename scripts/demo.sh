#!/usr/bin/env bash
# The main job, end to end on one machine: set up, start the lab, show the plan, then
# run a switchover drill Seoul -> Tokyo -> Seoul (playbooks/failover-to-tokyo.yaml there,
# playbooks/failback-to-seoul.yaml back) while a client writes orders through the
# service name, and print the drill report: drorch's measured RTO/RPO next to what the
# client saw (outage, lost acknowledged writes), judged against the objectives.
# Exit 1 if an objective is missed. The lab keeps running afterwards; stop it with:
#   .venv/bin/drorch lab down --dir lab
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
LAB=${LAB_DIR:-lab}
RATE=${LOAD_RATE:-20}
drorch=.venv/bin/drorch
export DRORCH_CONFIG="$LAB/drorch.yaml"

$drorch lab up --dir "$LAB"
echo "== the plan: what a failover to tokyo would change (nothing is changed)" >&2
$drorch plan --to tokyo >&2
echo "== drill: seoul -> tokyo -> seoul while a client writes $RATE orders/s" >&2
$drorch drill --to tokyo --load "$RATE" --yes
