#!/usr/bin/env bash
# `make demo`: the whole loop on one machine, in a few minutes, then everything stopped again.
#   1. a fresh local Kafka broker (deploy/local/kafka.sh, state in var/demo-kafka)
#   2. a simulated clickstream (python -m training simulate), cached under var/demo/
#   3. a model (python -m training train --quick), cached under var/demo/models/<key>, where the
#      key hashes the training code (featurizer included) and the events, so a code change retrains
#   4. the worker (python -m worker run) on that model, until /readyz says ready
#   5. replay of the events at a pace that spreads them over DEMO_SECONDS, while
#   6. the alerts view (python -m worker alerts --follow) shows alerts arriving live
#   7. a summary from the worker's /metrics; then worker and broker stop (also on Ctrl-C).
# Knobs (environment): DEMO_USERS (600), DEMO_DAYS (7), DEMO_SEED (7), DEMO_SECONDS (60),
#   DEMO_PRESET (quick; tiny trains in seconds), DEMO_VAR (var/demo; the broker then lives in it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PY=$ROOT/.venv/bin/python
KAFKA=$ROOT/deploy/local/kafka.sh
VAR=${DEMO_VAR:-$ROOT/var/demo}
KAFKA_DIR=${DEMO_VAR:+$VAR/kafka}
KAFKA_DIR=${KAFKA_DIR:-$ROOT/var/demo-kafka}
PRESET=${DEMO_PRESET:-quick}
USERS=${DEMO_USERS:-600}
DAYS=${DEMO_DAYS:-7}
SEED=${DEMO_SEED:-7}
SECONDS_LIVE=${DEMO_SECONDS:-60}
WORKER_PID=""
WATCH_PID=""

say() {
  # Bold only on a terminal: a log file or a pipe gets no escape codes.
  if [[ -t 2 ]]; then printf '\n\033[1mdemo: %s\033[0m\n' "$*" >&2; else printf '\ndemo: %s\n' "$*" >&2; fi
}
# Run a command that writes into a temporary path, showing the final path in its messages.
final_paths() {
  local tmp=$1 final=$2
  shift 2
  "$@" 2>&1 | sed -u "s|$tmp|$final|g" >&2
}
die() {
  echo "demo: $*" >&2
  exit 1
}

stop_pid() {
  # SIGTERM, wait up to $2 seconds, then SIGKILL: only the processes this script started.
  local pid=$1 wait_s=$2
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "demo: pid $pid did not stop in ${wait_s}s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  say "stopping"
  stop_pid "$WATCH_PID" 5
  stop_pid "$WORKER_PID" 30
  "$KAFKA" stop --dir "$KAFKA_DIR" >/dev/null 2>&1 || true
  echo "demo: stopped worker and broker (logs in ${VAR#"$ROOT"/}/)" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x $PY ]] || die "no .venv: run make setup first"
[[ $SECONDS_LIVE =~ ^[0-9]+$ && $SECONDS_LIVE -ge 10 ]] || die "DEMO_SECONDS=$SECONDS_LIVE: a whole number >= 10"
mkdir -p "$VAR/models"

say "1/6 Kafka broker (fresh, in ${KAFKA_DIR#"$ROOT"/})"
"$KAFKA" stop --dir "$KAFKA_DIR" >/dev/null 2>&1 || true
rm -rf "$KAFKA_DIR"
BOOTSTRAP=$("$KAFKA" start --dir "$KAFKA_DIR" | tail -n 1)
BOOTSTRAP=${BOOTSTRAP#KAFKA_BOOTSTRAP=}
echo "bootstrap: $BOOTSTRAP"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

say "2/6 simulated clickstream ($USERS users simulated, $DAYS days, seed $SEED)"
SIM_KEY=$(hash_of $(find training/simulate -name '*.py' | sort) <(echo "$USERS $DAYS $SEED"))
EVENTS=$VAR/events-$SIM_KEY.csv
if [[ -s $EVENTS ]]; then
  echo "reusing ${EVENTS#"$ROOT"/}"
else
  final_paths "$EVENTS.tmp.csv" "$EVENTS" \
    "$PY" -m training simulate --users "$USERS" --days "$DAYS" --seed "$SEED" --out "$EVENTS.tmp.csv"
  mv "$EVENTS.tmp.csv" "$EVENTS"
fi
N_EVENTS=$(($(wc -l <"$EVENTS") - 1))

say "3/6 model (train --preset $PRESET, or the cached one for this training code and data)"
MODEL_KEY=$(hash_of $(find training schemas -name '*.py' | sort) "$EVENTS" <(echo "$PRESET"))
MODEL=$VAR/models/$MODEL_KEY
if [[ -s $MODEL/manifest.json ]]; then
  echo "reusing ${MODEL#"$ROOT"/} ($(sed -n 's/.*"model_version": "\([^"]*\)".*/\1/p' "$MODEL/manifest.json"))"
else
  rm -rf "$MODEL.tmp"
  final_paths "$MODEL.tmp" "$MODEL" \
    "$PY" -m training train --events "$EVENTS" --out "$MODEL.tmp" --preset "$PRESET" --no-progress
  mv "$MODEL.tmp" "$MODEL"
fi

say "4/6 worker"
WEB_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$VAR/worker"
export CLICKSCORE_KAFKA_BOOTSTRAP=$BOOTSTRAP CLICKSCORE_MODEL_DIR=$MODEL
export CLICKSCORE_DATA_DIR=$VAR/worker CLICKSCORE_WEB_PORT=$WEB_PORT CLICKSCORE_WEB_HOST=127.0.0.1
export CLICKSCORE_PARTITIONS=${CLICKSCORE_PARTITIONS:-4}
# The replay squeezes days into DEMO_SECONDS; a sweep every minute would look at the silences once
# or twice. Every second it sees them about as often, in data time, as a live worker would.
export CLICKSCORE_CHURN_SWEEP_INTERVAL_SECONDS=${CLICKSCORE_CHURN_SWEEP_INTERVAL_SECONDS:-1}
"$PY" -m worker run >"$VAR/worker.log" 2>&1 &
WORKER_PID=$!
URL=http://127.0.0.1:$WEB_PORT
for ((i = 0; i < 240; i++)); do
  curl -sf "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$WORKER_PID" 2>/dev/null || { tail -n 20 "$VAR/worker.log" >&2; die "the worker exited"; }
  sleep 0.5
done
curl -sf "$URL/readyz" >/dev/null || { tail -n 20 "$VAR/worker.log" >&2; die "worker not ready in 120 s"; }
echo "worker ready (pid $WORKER_PID, log ${VAR#"$ROOT"/}/worker.log)"
echo "metrics: $URL/metrics   health: $URL/healthz   ready: $URL/readyz"

RATE=$(((N_EVENTS + SECONDS_LIVE - 1) / SECONDS_LIVE))
say "5/6 replaying $N_EVENTS events at $RATE events/s; 6/6 alerts arriving live (Ctrl-C stops all)"
"$PY" -m worker alerts --follow --from-beginning --duration $((SECONDS_LIVE * 3 + 60)) &
WATCH_PID=$!
"$PY" -m worker replay "$EVENTS" --rate "$RATE" --quiet >"$VAR/replay.log" 2>&1 && replay_status=0 ||
  replay_status=$?
# Let the worker catch up (every replayed event scored or dead-lettered; the events topic also
# carries the sweep's control records, so "consumed" alone can run ahead), so the view shows the
# last alerts too.
for ((i = 0; i < 60; i++)); do
  done_n=$(curl -sf "$URL/metrics" |
    awk '$1 ~ /^clickscore_events_(scored|dead_lettered)_total/ {s += $2} END {printf "%d", s}' || true)
  [[ ${done_n:-0} -ge $N_EVENTS ]] && break
  sleep 0.5
done
sleep 2 # one more sweep after the last event, and its alerts to the view
stop_pid "$WATCH_PID" 5 # SIGTERM: the view ends cleanly with its last table
WATCH_PID=""
cat "$VAR/replay.log"
[[ $replay_status == 0 ]] || die "replay failed (exit $replay_status)"

say "metrics (from $URL/metrics)"
curl -sf "$URL/metrics" >"$VAR/metrics.txt" || true
grep -E '^clickscore_(events_consumed_total|control_records_total|events_scored_total|events_dead_lettered_total|alerts_emitted_total|users_in_state|end_to_end_latency_seconds_(count|sum))(\{[^}]*\})? ' "$VAR/metrics.txt" || true

# The closing summary: per head, alerts sent, share of users alerted, share of active user-days
# alerted beside what training expected, and the model's test ROC-AUC beside its best baseline's;
# then what the training report would otherwise bury.
metric() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%d", s}' "$VAR/metrics.txt"; }
"$PY" -m worker alerts --bootstrap "$BOOTSTRAP" >"$VAR/alerts.txt" # one line per alert (not a tty)
"$PY" -m training.verdict --heads "$MODEL" >"$VAR/heads.txt"
USERS_SEEN=$(metric clickscore_users_in_state)
say "summary"
echo "events: $(metric clickscore_events_consumed_total) records consumed ($(metric clickscore_control_records_total) of them the sweep's control records), $(metric clickscore_events_scored_total) events scored, $(metric clickscore_events_dead_lettered_total) dead letters; $USERS_SEEN users"
# Each user's first event id (the simulator writes events in time order): an alert on it was
# decided from one event of history, which says more about the threshold than about the user.
awk -F, 'NR > 1 && !($2 in seen) {seen[$2] = 1; print $1}' "$EVENTS" >"$VAR/first-events.txt"
# The budget's unit: a user-day with an event is active; it is alerted when an alert names one of
# its events (a sweep alert names the event that began the silence). Beside it, what training
# expected on validation at this threshold (threshold_rule in the manifest).
awk -F, 'NR > 1 {print $1 "," $2 "," int($4 / 86400000)}' "$EVENTS" >"$VAR/event-days.txt"
ACTIVE_DAYS=$(cut -d, -f2,3 "$VAR/event-days.txt" | sort -u | wc -l)
expected() {
  "$PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))["threshold_rule"][sys.argv[2]]
p, n = r.get("expected_precision"), r.get("expected_alerts")
print("%.1f %% expected, precision %s" % (100 * r["expected_alert_share"], "n/a" if p is None else "%.2f" % p)
      + ("" if n is None else " of %d alerts" % n))' \
    "$MODEL/manifest.json" "$1"
}
while IFS=$'\t' read -r head auc; do
  sent=$(awk -v t="$head" '$1 == t' "$VAR/alerts.txt" | wc -l)
  alerted=$(awk -v t="$head" '$1 == t {print $2}' "$VAR/alerts.txt" | sort -u | wc -l)
  share=$(awk -v a="$alerted" -v n="$USERS_SEEN" 'BEGIN {printf "%.1f", n ? 100 * a / n : 0}')
  first=$(awk -v t="$head" 'NR == FNR {f["event=" $0] = 1; next}
    $1 == t {for (i = 2; i <= NF; i++) if ($i in f) n++} END {print n + 0}' "$VAR/first-events.txt" "$VAR/alerts.txt")
  days=$(awk -v t="$head" 'NR == FNR {d["event=" $1] = $2 "," $3; next}
    $1 == t {for (i = 2; i <= NF; i++) if ($i in d) print d[$i]}' FS=, "$VAR/event-days.txt" FS=' ' "$VAR/alerts.txt" |
    sort -u | wc -l)
  day_share=$(awk -v a="$days" -v n="$ACTIVE_DAYS" 'BEGIN {printf "%.1f", n ? 100 * a / n : 0}')
  echo "$head: $sent alerts to $alerted of $USERS_SEEN users ($share %), $first on a user's first event;" \
    "$day_share % of $ACTIVE_DAYS active user-days (validation: $(expected "$head")); $auc"
done <"$VAR/heads.txt"
"$PY" -m training.verdict "$MODEL" | sed 's/^/note: /'
