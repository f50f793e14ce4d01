#!/usr/bin/env bash
# A local Apache Kafka (KRaft) built from Maven Central jars: no Docker, no tarball.
# See --help for usage; docs/contracts.md for the command's contract.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")
CACHE=${CLICKSCORE_CACHE:-$HOME/.cache/clickscore}
LIBS=$CACHE/kafka-$KAFKA_VERSION/libs
# A class-data-sharing archive of the broker's classes, made by `fetch`: it halves a JVM's start-up CPU.
CDS=$CACHE/kafka-$KAFKA_VERSION/kafka.jsa
START_TIMEOUT=${CLICKSCORE_KAFKA_START_TIMEOUT:-180}
STOP_TIMEOUT=30
# The JVM flags of Kafka's own start scripts, plus C1 only (TieredStopAtLevel=1): on a small shared
# machine C2 compilation costs more CPU at start than a short-lived test broker ever wins back.
# CLICKSCORE_KAFKA_JVM_OPTS comes last, so "-XX:TieredStopAtLevel=4" there restores C2 (benchmarks).
JVM_FLAGS=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true
  -XX:TieredStopAtLevel=1)
# Short-lived tools (storage format): C1 and the serial collector start fastest.
TOOL_FLAGS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m)
read -r -a EXTRA_FLAGS <<<"${CLICKSCORE_KAFKA_JVM_OPTS:-}"

usage() {
  cat <<EOF
Usage: deploy/local/kafka.sh COMMAND [OPTIONS]

Runs Apache Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1 from jars fetched once from Maven Central.

Commands:
  start   [--brokers 1|3] [--dir DIR] [--security plaintext|sasl_ssl] [--authorizer]
                                       format (first time) and start; prints KAFKA_BOOTSTRAP=... last.
                                       1: one combined broker+controller node (node 1).
                                       3: controller-only node 0 + brokers 1..3, replication 3,
                                          min.insync.replicas=2, a killed broker is fenced in ~6 s.
                                       Already running in DIR: says so on stderr, prints the
                                       bootstrap line and exits 0. A stopped DIR is resumed with
                                       its data and ports (rm -rf DIR for a fresh one).
                                       --security sasl_ssl (one broker only): the client listener
                                       speaks SASL_SSL with SCRAM-SHA-512 and TLS from a throwaway
                                       CA made with keytool in DIR/tls; users are created at format
                                       time. Prints the client settings (KAFKA_SSL_CA_FILE,
                                       KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, ...) before the
                                       bootstrap line; DIR/client.env holds them as CLICKSCORE_*.
                                       --authorizer (with sasl_ssl, at first start): KRaft's
                                       StandardAuthorizer; User:admin (password in DIR/secrets.env)
                                       and the node's own PLAINTEXT controller listener
                                       (User:ANONYMOUS, 127.0.0.1 only) are super users; the
                                       client user may do nothing until ACLs grant it (kafka-acls,
                                       or AdminClient.create_acls as admin).
  stop    [--dir DIR]                  SIGTERM, wait <= ${STOP_TIMEOUT} s, SIGKILL; brokers before the controller.
  status  [--dir DIR]                  one line per node; exit 0 when every node runs, 1 otherwise.
  kill    --node N [--dir DIR]         SIGKILL node N (a fault test's broker crash).
  restart --node N [--dir DIR]         (stop and) start node N again, same properties, no reformat;
                                       waits until the cluster lists all its brokers again.
  fetch                                fetch the jars into the cache and build a class-data
                                       archive of the broker's classes (faster JVM starts).

Options and environment:
  --dir DIR                        state dir (default: \$repo/var/kafka)
  CLICKSCORE_CACHE                 jar cache root (default: \$HOME/.cache/clickscore); jars in
                                   \$CLICKSCORE_CACHE/kafka-$KAFKA_VERSION/libs
  CLICKSCORE_KAFKA_PORT            pin the client port (brokers of a cluster take PORT..PORT+2)
  CLICKSCORE_KAFKA_CONTROLLER_PORT pin the controller port
  CLICKSCORE_KAFKA_START_TIMEOUT   seconds to wait for readiness (default 180)
  CLICKSCORE_KAFKA_JVM_OPTS        extra JVM flags for the nodes, after ours; brokers run C1-only
                                   for quick starts, "-XX:TieredStopAtLevel=4" brings C2 back

Logs: DIR/node-N/node.log (WARN, plus the "Kafka Server started" line), DIR/node-N/console.out.
EOF
}

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

say() {
  echo "kafka.sh: $*" >&2
}

# ---------------------------------------------------------------- jars

fetch_jars() {
  # Fetch once, into a temporary dir renamed into place, under a lock: parallel callers share one download.
  [[ -f $LIBS/.complete ]] && return 0
  command -v mvn >/dev/null ||
    die "no cached Kafka jars in $LIBS and 'mvn' is not installed (apt-get install -y maven, or set CLICKSCORE_CACHE)"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/kafka-$KAFKA_VERSION.lock"
  flock 9
  if [[ ! -f $LIBS/.complete ]]; then
    say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
    local tmp
    tmp=$(mktemp -d "$CACHE/kafka-$KAFKA_VERSION.tmp.XXXXXX")
    if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
      tail -n 20 "$tmp/mvn.log" >&2
      rm -rf "$tmp"
      die "mvn could not fetch the Kafka jars (log above)"
    fi
    touch "$tmp/libs/.complete"
    rm -rf "$LIBS"
    mkdir -p "$(dirname "$LIBS")"
    mv "$tmp/libs" "$LIBS"
    rm -rf "$tmp"
  fi
  flock -u 9
}

cds_flags() {
  # Used only when present; a stale archive (other JDK, other jars) is ignored by the JVM itself.
  [[ -f $CDS ]] && echo "-XX:SharedArchiveFile=$CDS -Xshare:auto"
  return 0
}

build_cds() {
  # Run a throw-away broker once with ArchiveClassesAtExit; its classes are dumped when it stops.
  # Runs in a subshell: it sets the globals (DIR, BROKERS, ...) of a start.
  tmp=$(mktemp -d "$CACHE/kafka-$KAFKA_VERSION.cds.XXXXXX")  # not local: the EXIT trap needs it
  trap 'stop_nodes "${NODES:-}" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
  say "building the class-data archive $CDS (once, ~20 s)"
  DIR=$tmp/kafka BROKERS=1 CMD=start PROBE_PY=$(probe_python)
  unset CLICKSCORE_KAFKA_PORT CLICKSCORE_KAFKA_CONTROLLER_PORT
  mkdir -p "$DIR"
  configure
  launch_node 1 "-XX:ArchiveClassesAtExit=$tmp/kafka.jsa"
  wait_ready 1
  stop_nodes 1
  [[ -s $tmp/kafka.jsa ]] || die "the JVM wrote no class-data archive"
  mv "$tmp/kafka.jsa" "$CDS"
}

# ---------------------------------------------------------------- processes and ports

node_pid() {
  # The pid of node $1 if it is alive and really that node (a recycled pid or a zombie is not).
  local pidfile=$DIR/node-$1/pid pid state
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -r /proc/$pid/cmdline ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$DIR/node-$1/server.properties" || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port_free() {
  # Bindable with SO_REUSEADDR, as Kafka binds: a TIME_WAIT socket from a stopped node does not count.
  python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
}

free_ports() {
  # $1 distinct free ports, held open together so they cannot repeat.
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

probe_python() {
  # A Python that has confluent-kafka, for a metadata probe; empty when none (port polling only).
  local py
  for py in "${CLICKSCORE_PYTHON:-}" "$ROOT/.venv/bin/python" python3; do
    [[ -n $py ]] && command -v "$py" >/dev/null && "$py" -c 'import confluent_kafka' 2>/dev/null &&
      echo "$py" && return 0
  done
  return 0
}

metadata_lists() {
  # True when a metadata request to $1 lists at least $2 brokers (as a client of a secured
  # broker when DIR/client.env exists: the probe reads its settings from that file, not from
  # the caller's environment).
  [[ -z $PROBE_PY ]] && return 0
  "$PROBE_PY" - "$1" "$2" "$DIR/client.env" <<'EOF' 2>/dev/null
import os, sys
from confluent_kafka.admin import AdminClient
config = {"bootstrap.servers": sys.argv[1], "log_level": 0}
if os.path.exists(sys.argv[3]):
    with open(sys.argv[3]) as f:
        env = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    config |= {
        "security.protocol": env["CLICKSCORE_SECURITY_PROTOCOL"],
        "sasl.mechanism": env["CLICKSCORE_SASL_MECHANISM"],
        "sasl.username": env["CLICKSCORE_SASL_USERNAME"],
        "sasl.password": env["CLICKSCORE_SASL_PASSWORD"],
        "ssl.ca.location": env["CLICKSCORE_SSL_CA_FILE"],
    }
admin = AdminClient(config)
sys.exit(0 if len(admin.list_topics(timeout=5).brokers) >= int(sys.argv[2]) else 1)
EOF
}

# ---------------------------------------------------------------- configuration

write_properties() {
  # write_properties NODE ROLES CLIENT_PORT(empty for controller-only)
  local node=$1 roles=$2 port=$3 file=$DIR/node-$1/server.properties
  # The client listener's name is its protocol: PLAINTEXT, or SASL_SSL (--security sasl_ssl).
  local LISTENER=PLAINTEXT
  [[ $SECURITY == sasl_ssl ]] && LISTENER=SASL_SSL
  mkdir -p "$DIR/node-$node/data"
  {
    echo "process.roles=$roles"
    echo "node.id=$node"
    echo "controller.quorum.voters=$VOTER"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=$LISTENER:$LISTENER,CONTROLLER:PLAINTEXT"
    echo "log.dirs=$DIR/node-$node/data"
    echo "num.partitions=1"
    echo "group.initial.rebalance.delay.ms=0"
    # The default dedupe buffer takes 128 MiB of heap at start.
    echo "log.cleaner.dedupe.buffer.size=2097152"
    case $roles in
      broker,controller)
        echo "listeners=$LISTENER://127.0.0.1:$port,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
        ;;
      controller)
        echo "listeners=CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
        ;;
      broker)
        echo "listeners=PLAINTEXT://127.0.0.1:$port"
        ;;
    esac
    if [[ $SECURITY == sasl_ssl ]]; then
      security_properties "$port"
    elif [[ $roles == *broker* ]]; then
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
      echo "inter.broker.listener.name=PLAINTEXT"
    fi
    if [[ $roles == *broker* ]]; then
      echo "auto.create.topics.enable=true"
      if [[ $BROKERS == 1 ]]; then
        echo "default.replication.factor=1"
        echo "min.insync.replicas=1"
        echo "offsets.topic.replication.factor=1"
        echo "transaction.state.log.replication.factor=1"
        echo "transaction.state.log.min.isr=1"
        echo "share.coordinator.state.topic.replication.factor=1"
        echo "share.coordinator.state.topic.min.isr=1"
      else
        echo "default.replication.factor=3"
        echo "min.insync.replicas=2"
        echo "offsets.topic.replication.factor=3"
        echo "transaction.state.log.replication.factor=3"
        echo "transaction.state.log.min.isr=2"
        echo "share.coordinator.state.topic.replication.factor=3"
        echo "share.coordinator.state.topic.min.isr=2"
        # A killed broker is fenced (and its partitions led elsewhere) after a few seconds.
        echo "broker.heartbeat.interval.ms=1000"
        echo "broker.session.timeout.ms=6000"
      fi
    fi
  } >"$file"
  echo "$port" >"$DIR/node-$node/port"
}

# ---------------------------------------------------------------- security (--security sasl_ssl)

secret() {
  # A random password: 24 letters and digits (no quoting trouble in properties or JAAS strings).
  head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24
}

keytool_q() {
  # keytool is a JVM too: the tool flags keep its start cheap; output only on failure.
  local out
  out=$(keytool -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC "$@" 2>&1) ||
    die "keytool $1 failed: $out"
}

make_tls() {
  # A throwaway CA and a broker certificate it signs (SAN 127.0.0.1, localhost), in DIR/tls:
  # ca.pem (what clients trust), broker.p12 (key + chain), truststore.p12 (the CA, for the
  # broker's own inter-broker client). Nothing here outlives DIR.
  local tls=$DIR/tls pw=$1
  rm -rf "$tls"
  mkdir -p "$tls"
  chmod 700 "$tls"
  local -a store=(-storetype PKCS12 -storepass "$pw")
  keytool_q -genkeypair -alias ca -dname "CN=clickscore throwaway test CA" -keyalg RSA \
    -keysize 2048 -validity 30 -ext bc:c=ca:true -ext KU:c=keyCertSign,cRLSign \
    -keystore "$tls/ca.p12" "${store[@]}"
  keytool_q -exportcert -rfc -alias ca -keystore "$tls/ca.p12" "${store[@]}" -file "$tls/ca.pem"
  keytool_q -genkeypair -alias broker -dname "CN=127.0.0.1" -keyalg RSA -keysize 2048 \
    -validity 30 -keystore "$tls/broker.p12" "${store[@]}"
  keytool_q -certreq -alias broker -keystore "$tls/broker.p12" "${store[@]}" -file "$tls/broker.csr"
  keytool_q -gencert -alias ca -keystore "$tls/ca.p12" "${store[@]}" -infile "$tls/broker.csr" \
    -outfile "$tls/broker.pem" -rfc -validity 30 -ext SAN=IP:127.0.0.1,DNS:localhost \
    -ext KU:c=digitalSignature,keyEncipherment -ext EKU=serverAuth,clientAuth
  # The chain goes into the broker's keystore: CA first, then the signed certificate over the key.
  keytool_q -importcert -noprompt -alias ca -file "$tls/ca.pem" -keystore "$tls/broker.p12" \
    "${store[@]}"
  keytool_q -importcert -alias broker -file "$tls/broker.pem" -keystore "$tls/broker.p12" \
    "${store[@]}"
  keytool_q -importcert -noprompt -alias ca -file "$tls/ca.pem" \
    -keystore "$tls/truststore.p12" "${store[@]}"
  rm -f "$tls/broker.csr" "$tls/ca.p12"  # the CA key is not needed again: nothing else is signed
}

make_secrets() {
  # Passwords for this DIR (mode 600), the TLS files, and client.env: what a client needs,
  # as CLICKSCORE_* lines (the worker's and the tools' variable names).
  local store_pw admin_pw client_pw
  store_pw=$(secret) admin_pw=$(secret) client_pw=$(secret)
  (
    umask 077
    printf 'STORE_PASSWORD=%s\nADMIN_PASSWORD=%s\nCLIENT_USER=clickscore\nCLIENT_PASSWORD=%s\n' \
      "$store_pw" "$admin_pw" "$client_pw" >"$DIR/secrets.env"
  )
  make_tls "$store_pw"
  (
    umask 077
    printf '%s\n' "CLICKSCORE_SECURITY_PROTOCOL=SASL_SSL" "CLICKSCORE_SASL_MECHANISM=SCRAM-SHA-512" \
      "CLICKSCORE_SASL_USERNAME=clickscore" "CLICKSCORE_SASL_PASSWORD=$client_pw" \
      "CLICKSCORE_SSL_CA_FILE=$DIR/tls/ca.pem" >"$DIR/client.env"
  )
}

security_properties() {
  # The SASL_SSL listener's settings (a single combined node; see write_properties). The KRaft
  # controller listener stays PLAINTEXT on 127.0.0.1: clients are only told of the SASL_SSL one.
  local port=$1
  # shellcheck disable=SC1091
  source "$DIR/secrets.env"
  echo "advertised.listeners=SASL_SSL://127.0.0.1:$port"
  echo "inter.broker.listener.name=SASL_SSL"
  echo "sasl.enabled.mechanisms=SCRAM-SHA-512"
  echo "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$ADMIN_PASSWORD\";"
  echo "ssl.keystore.type=PKCS12"
  echo "ssl.keystore.location=$DIR/tls/broker.p12"
  echo "ssl.keystore.password=$STORE_PASSWORD"
  echo "ssl.key.password=$STORE_PASSWORD"
  echo "ssl.truststore.type=PKCS12"
  echo "ssl.truststore.location=$DIR/tls/truststore.p12"
  echo "ssl.truststore.password=$STORE_PASSWORD"
  echo "ssl.client.auth=none"
  if [[ $AUTHORIZER == true ]]; then
    # The combined node's broker reaches its controller over the PLAINTEXT controller listener
    # (127.0.0.1), as User:ANONYMOUS: without it as a super user the node cannot register.
    echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    echo "super.users=User:admin;User:ANONYMOUS"
    echo "allow.everyone.if.no.acl.found=false"
  fi
}

scram_args() {
  # StorageTool format options that create the SCRAM users (KRaft has no ZooKeeper to hold them).
  [[ $SECURITY == sasl_ssl ]] || return 0
  # shellcheck disable=SC1091
  source "$DIR/secrets.env"
  # One argument per line (the caller reads them into an array: no word splitting, no globbing).
  printf '%s\n' --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$CLIENT_USER,password=$CLIENT_PASSWORD]"
}

print_client() {
  # Before the bootstrap line: what a client of a secured broker needs (KAFKA_* = client.env).
  [[ -f $DIR/client.env ]] || return 0
  sed 's/^CLICKSCORE_/KAFKA_/' "$DIR/client.env"
}

configure() {
  # Pick ports, write every node's properties and format its storage with one new cluster id.
  local n_ports ports pinned=${CLICKSCORE_KAFKA_PORT:-} cpinned=${CLICKSCORE_KAFKA_CONTROLLER_PORT:-}
  local -a client
  n_ports=$((BROKERS + 1))
  read -r -a ports <<<"$(free_ports "$n_ports")"
  CONTROLLER_PORT=${cpinned:-${ports[0]}}
  if [[ -n $pinned ]]; then
    for i in $(seq 0 $((BROKERS - 1))); do client+=($((pinned + i))); done
  else
    client=("${ports[@]:1}")
  fi
  [[ -z $cpinned ]] || port_free "$cpinned" ||
    die "port $cpinned (CLICKSCORE_KAFKA_CONTROLLER_PORT) is in use"
  for p in "${client[@]}"; do
    [[ -z $pinned ]] || port_free "$p" || die "port $p (from CLICKSCORE_KAFKA_PORT=$pinned) is in use"
  done

  rm -f "$DIR/client.env" "$DIR/secrets.env"
  rm -rf "$DIR/tls"
  [[ $SECURITY != sasl_ssl ]] || make_secrets
  CLUSTER_ID=-
  while [[ $CLUSTER_ID == -* ]]; do
    CLUSTER_ID=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  if [[ $BROKERS == 1 ]]; then
    NODES="1" BROKER_NODES="1"
    VOTER="1@127.0.0.1:$CONTROLLER_PORT"
    write_properties 1 broker,controller "${client[0]}"
    echo 512m >"$DIR/node-1/heap"
  else
    NODES="1 2 3 0" BROKER_NODES="1 2 3"
    VOTER="0@127.0.0.1:$CONTROLLER_PORT"
    write_properties 0 controller "$CONTROLLER_PORT"
    echo 256m >"$DIR/node-0/heap"
    for i in 1 2 3; do
      write_properties "$i" broker "${client[$((i - 1))]}"
      echo 384m >"$DIR/node-$i/heap"
    done
  fi
  local bootstrap="" node
  for node in $BROKER_NODES; do bootstrap+="${bootstrap:+,}127.0.0.1:$(<"$DIR/node-$node/port")"; done
  echo "$bootstrap" >"$DIR/bootstrap"

  local -a pids=() scram=()
  mapfile -t scram < <(scram_args)
  for node in $NODES; do
    # shellcheck disable=SC2046  # cds_flags is two words or none
    java "${TOOL_FLAGS[@]}" $(cds_flags) -cp "$LIBS/*" \
      -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
      -Dclickscore.log.file="$DIR/node-$node/node.log" \
      kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$DIR/node-$node/server.properties" \
      "${scram[@]}" >"$DIR/node-$node/format.out" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { cat "$DIR"/node-*/format.out >&2; die "formatting storage failed"; }
  done
  # Written last: a dir with cluster.env is a formatted, startable cluster.
  printf 'BROKERS=%s\nNODES="%s"\nBROKER_NODES="%s"\nCLUSTER_ID=%s\nSECURITY=%s\nAUTHORIZER=%s\n' \
    "$BROKERS" "$NODES" "$BROKER_NODES" "$CLUSTER_ID" "$SECURITY" "$AUTHORIZER" >"$DIR/cluster.env"
}

# ---------------------------------------------------------------- node lifecycle

launch_node() {
  # launch_node NODE [EXTRA JVM FLAG...]
  local node=$1 heap
  shift
  heap=$(<"$DIR/node-$node/heap")
  echo "=== start $(date -u +%FT%TZ)" >>"$DIR/node-$node/console.out"
  # shellcheck disable=SC2046  # cds_flags is two words or none
  nohup java "-Xmx$heap" "-Xms64m" "${JVM_FLAGS[@]}" $(cds_flags) "${EXTRA_FLAGS[@]}" "$@" \
    -cp "$LIBS/*" \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
    -Dclickscore.log.file="$DIR/node-$node/node.log" \
    kafka.Kafka "$DIR/node-$node/server.properties" \
    </dev/null >>"$DIR/node-$node/console.out" 2>&1 8>&- 9>&- &
  # (fds 8 and 9 hold kafka.sh's locks; the broker must not keep them.)
  local pid=$! tries=0
  echo "$pid" >"$DIR/node-$node/pid"
  # Until the child has exec'd, its cmdline is this script's, and node_pid would call it dead.
  while [[ -e /proc/$pid ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
    grep -qF "$DIR/node-$node/server.properties" && ((tries++ < 100)); do
    sleep 0.05
  done
}

wait_ready() {
  # Wait until every node in $1 has its port open and the brokers' metadata lists all of them.
  local nodes=$1 deadline=$((SECONDS + START_TIMEOUT)) node port pending
  while :; do
    pending=""
    for node in $nodes; do
      node_pid "$node" >/dev/null || die_node "$node"
      port=$(<"$DIR/node-$node/port")
      port_open "$port" || pending+=" $node"
    done
    if [[ -z $pending ]] && metadata_lists "$(<"$DIR/bootstrap")" "$(wc -w <<<"$BROKER_NODES")"; then
      return 0
    fi
    ((SECONDS < deadline)) || die "not ready after ${START_TIMEOUT} s (waiting for node(s)${pending:- metadata}); see $DIR/node-*/node.log"
    sleep 0.3
  done
}

die_node() {
  local node=$1
  say "node $node exited during start; the errors and last lines of its logs:"
  # The exception's message sits above its stack trace, so show error lines before the tail.
  grep -E -A1 '(ERROR|FATAL) ' "$DIR/node-$node/node.log" 2>/dev/null | tail -n 6 >&2 || true
  tail -n 8 "$DIR/node-$node/node.log" >&2 2>/dev/null || true
  tail -n 5 "$DIR/node-$node/console.out" >&2 2>/dev/null || true
  # A failed start leaves nothing running; a failed restart leaves the other nodes alone.
  [[ $CMD != start ]] || stop_nodes "$NODES" >/dev/null 2>&1 || true
  die "node $node of $DIR died during start (see $DIR/node-$node/node.log)"
}

stop_nodes() {
  # SIGTERM the given nodes together, wait up to STOP_TIMEOUT, then SIGKILL; wait for their ports to close.
  local nodes=$1 node pid deadline=$((SECONDS + STOP_TIMEOUT))
  for node in $nodes; do
    pid=$(node_pid "$node") && kill -TERM "$pid" 2>/dev/null || true
  done
  for node in $nodes; do
    while pid=$(node_pid "$node"); do
      if ((SECONDS >= deadline)); then
        say "node $node did not stop within ${STOP_TIMEOUT} s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
    rm -f "$DIR/node-$node/pid"
  done
  for node in $nodes; do
    local port
    port=$(<"$DIR/node-$node/port")
    deadline=$((SECONDS + 10))
    while port_open "$port"; do
      ((SECONDS < deadline)) || die "port $port of node $node is still open after stop"
      sleep 0.2
    done
  done
}

# ---------------------------------------------------------------- commands

lock_dir() {
  # One command at a time per dir: a stop that comes while a start is still launching nodes (a
  # killed test run's clean-up) waits for it, then stops what it launched.
  exec 8>"$DIR/.lock"
  flock -w 300 8 || die "another kafka.sh has held $DIR for 300 s"
}

load_env() {
  [[ -f $DIR/cluster.env ]] || die "no Kafka set up in $DIR (run: kafka.sh start --dir $DIR)"
  SECURITY=plaintext  # dirs set up before --security existed hold no SECURITY line
  AUTHORIZER=false  # nor an AUTHORIZER line
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
}

cmd_start() {
  command -v java >/dev/null || die "'java' not found on PATH (apt-get install -y openjdk-17-jre-headless)"
  command -v python3 >/dev/null || die "'python3' not found on PATH (used to pick free ports)"
  fetch_jars
  mkdir -p "$DIR"
  lock_dir
  PROBE_PY=$(probe_python)
  local started=$SECONDS node running="" down=""
  if [[ -f $DIR/cluster.env ]]; then
    local want=$BROKERS want_security=$SECURITY want_authorizer=$AUTHORIZER
    load_env
    [[ -z $want || $want == "$BROKERS" ]] ||
      die "$DIR holds a $BROKERS-broker setup, not $want (use another --dir, or stop and rm -rf it)"
    [[ -z $want_security || $want_security == "$SECURITY" ]] ||
      die "$DIR holds a $SECURITY setup, not $want_security (use another --dir, or stop and rm -rf it)"
    [[ -z $want_authorizer || $want_authorizer == "$AUTHORIZER" ]] ||
      die "$DIR holds a setup with AUTHORIZER=$AUTHORIZER, not --authorizer (use another --dir)"
    for node in $NODES; do
      if node_pid "$node" >/dev/null; then running+=" $node"; else down+=" $node"; fi
    done
    if [[ -z $down ]]; then
      say "already running in $DIR (nodes$running); not starting another"
      print_client
      echo "KAFKA_BOOTSTRAP=$(<"$DIR/bootstrap")"
      return 0
    fi
    [[ -z $running ]] ||
      die "$DIR is partly running (down:$down); use 'restart --node N' or 'stop' first"
    for node in $NODES; do
      port_free "$(<"$DIR/node-$node/port")" ||
        die "port $(<"$DIR/node-$node/port") of node $node (kept in $DIR) is in use; stop its user or rm -rf $DIR"
    done
    say "resuming the stopped $BROKERS-broker setup in $DIR"
  else
    BROKERS=${BROKERS:-1} SECURITY=${SECURITY:-plaintext} AUTHORIZER=${AUTHORIZER:-false}
    rm -rf "${DIR:?}"/node-* "$DIR/bootstrap"
    configure
  fi
  # The controller (node 0 of a cluster) first: brokers register with it.
  if [[ $BROKERS == 3 ]]; then
    launch_node 0
    wait_ready_port 0
  fi
  for node in $BROKER_NODES; do launch_node "$node"; done
  wait_ready "$NODES"
  say "started $BROKERS broker(s) in $((SECONDS - started)) s (state in $DIR)"
  print_client
  echo "KAFKA_BOOTSTRAP=$(<"$DIR/bootstrap")"
}

wait_ready_port() {
  local node=$1 deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$(<"$DIR/node-$node/port")"; do
    node_pid "$node" >/dev/null || die_node "$node"
    ((SECONDS < deadline)) || die "node $node: port not open after ${START_TIMEOUT} s"
    sleep 0.2
  done
}

cmd_stop() {
  # Lock before looking: a start may be formatting the dir right now.
  [[ ! -d $DIR ]] || lock_dir
  if [[ ! -f $DIR/cluster.env ]]; then
    say "nothing set up in $DIR; nothing to stop"
    return 0
  fi
  load_env
  stop_nodes "$BROKER_NODES"
  [[ $BROKERS == 1 ]] || stop_nodes 0
  say "stopped (state kept in $DIR)"
}

cmd_status() {
  load_env
  local node pid all=0 roles
  for node in $NODES; do
    roles=$(sed -n 's/^process.roles=//p' "$DIR/node-$node/server.properties")
    if pid=$(node_pid "$node"); then
      echo "node $node ($roles) running pid $pid port $(<"$DIR/node-$node/port")"
    else
      echo "node $node ($roles) stopped port $(<"$DIR/node-$node/port")"
      all=1
    fi
  done
  echo "KAFKA_BOOTSTRAP=$(<"$DIR/bootstrap")"
  return $all
}

check_node() {
  [[ -n $NODE ]] || die "--node N is required"
  [[ " $NODES " == *" $NODE "* ]] || die "no node $NODE in $DIR (nodes: $NODES)"
}

cmd_kill() {
  load_env
  check_node
  lock_dir
  local pid
  pid=$(node_pid "$NODE") || die "node $NODE is not running"
  kill -KILL "$pid"
  while node_pid "$NODE" >/dev/null; do sleep 0.1; done
  rm -f "$DIR/node-$NODE/pid"
  say "node $NODE (pid $pid) killed"
}

cmd_restart() {
  load_env
  check_node
  lock_dir
  PROBE_PY=$(probe_python)
  local started=$SECONDS
  node_pid "$NODE" >/dev/null && stop_nodes "$NODE"
  port_free "$(<"$DIR/node-$NODE/port")" || die "port $(<"$DIR/node-$NODE/port") of node $NODE is in use"
  launch_node "$NODE"
  wait_ready "$NODE"
  say "node $NODE back in $((SECONDS - started)) s"
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || {
    usage >&2
    exit 2
  }
  shift
  DIR=$ROOT/var/kafka BROKERS="" NODE="" SECURITY="" AUTHORIZER=""
  while (($#)); do
    case $1 in
      --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
      --brokers) BROKERS=${2:?--brokers needs a value}; shift 2 ;;
      --node) NODE=${2:?--node needs a value}; shift 2 ;;
      --security) SECURITY=${2:?--security needs a value}; shift 2 ;;
      --authorizer) AUTHORIZER=true; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option '$1' (see --help)" ;;
    esac
  done
  [[ -z $BROKERS || $BROKERS == 1 || $BROKERS == 3 ]] || die "--brokers must be 1 or 3, not '$BROKERS'"
  [[ -z $SECURITY || $SECURITY == plaintext || $SECURITY == sasl_ssl ]] ||
    die "--security must be plaintext or sasl_ssl, not '$SECURITY'"
  [[ $SECURITY != sasl_ssl || -z $BROKERS || $BROKERS == 1 ]] ||
    die "--security sasl_ssl runs one broker only (--brokers 1)"
  [[ -z $AUTHORIZER || $SECURITY == sasl_ssl ]] ||
    die "--authorizer needs --security sasl_ssl (ACLs name SASL users)"
  mkdir -p "$(dirname "$DIR")"
  DIR=$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")
  CMD=$cmd
  case $cmd in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill) cmd_kill ;;
    restart) cmd_restart ;;
    fetch)
      fetch_jars
      [[ -f $CDS ]] || (build_cds) || say "no class-data archive (optional; brokers start slower)"
      echo "$LIBS"
      ;;
    -h | --help | help) usage ;;
    *) die "unknown command '$cmd' (see --help)" ;;
  esac
}

main "$@"
