#!/usr/bin/env bash
# The main job, end to end on one machine: set up, start the lab, show the plan,
# then fail the service over from Seoul to Tokyo (playbooks/failover-to-tokyo.yaml)
# while a client writes orders, print what happened with the measured RTO/RPO and
# the client's own view (outage, lost writes), and fail back to Seoul
# (playbooks/failback-to-seoul.yaml). The lab keeps running afterwards; stop it
# with: .venv/bin/drorch lab down --dir lab
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
echo "== a client writes $RATE orders/s through the service name; failing over seoul -> tokyo under load" >&2
$drorch lab load --dir "$LAB" --rate "$RATE" --duration 12 --out "$LAB/load-failover.jsonl" --output json \
  > "$LAB/load-failover.json" &
load_pid=$!
trap 'kill $load_pid 2>/dev/null || true' EXIT
sleep 4
$drorch failover --to tokyo --yes --output json > "$LAB/failover.json"
wait $load_pid
trap - EXIT
echo "== failing back to seoul" >&2
$drorch failback --yes --output json > "$LAB/failback.json"
.venv/bin/python - "$LAB" <<'PY'
import json, sys
lab = sys.argv[1]
failover = json.load(open(f"{lab}/failover.json"))
back = json.load(open(f"{lab}/failback.json"))
load = json.load(open(f"{lab}/load-failover.json"))
print(f"\nfailover {failover['from']} -> {failover['to']} ({failover['kind']}, playbook {failover['playbook']}): "
      f"{failover['status']}")
for step in failover["steps"]:
    print(f"  {step['status']:9} {step['duration_seconds']:7.3f} s  {step['name']}")
print(f"measured by drorch:  RTO {failover['rto_seconds']} s, RPO {failover['rpo_seconds']} s "
      f"(lost transactions: {failover['lost_transactions']})")
print(f"seen by the client:  {load['acknowledged']}/{load['attempted']} writes acknowledged, "
      f"longest outage {load['outage_seconds']} s, lost acknowledged writes {load['lost_acknowledged_writes']}")
print(f"failback {back['from']} -> {back['to']} (playbook {back['playbook']}): {back['status']}, "
      f"RTO {back['rto_seconds']} s")
ok = failover["status"] == back["status"] == "succeeded" and load["lost_acknowledged_writes"] == 0
sys.exit(0 if ok else 1)
PY
