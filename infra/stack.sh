#!/usr/bin/env bash
# The local stack: Apache Kafka (KRaft, single node) and Apicurio Registry, both on 127.0.0.1.
#
#   infra/stack.sh fetch    download the binaries through infra/pom.xml (Maven Central)
#   infra/stack.sh start    fetch if needed, start both, wait until each really answers
#   infra/stack.sh stop     stop both (by PID)
#   infra/stack.sh status   say what is running
#   infra/stack.sh reset    stop both and delete Kafka's data (topics left by unfinished runs, and
#                           with them the registry's schemas: see below)
#   infra/stack.sh start|stop kafka|registry   the same for one of the two only
#   infra/stack.sh start|stop oidc   a Keycloak for a registry behind auth (see below)
#
# Data, logs and PID files live under $STACK_DIR (default: <repo>/.stack); the downloaded
# binaries under $STACK_DIST (default: <repo>/.stack/dist, shared by every STACK_DIR). Ports come
# from KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093) and REGISTRY_PORT (8081). With KAFKA_SASL_PORT
# set, Kafka also listens there with SASL_PLAINTEXT (mechanism PLAIN) for the users in
# KAFKA_SASL_USERS ("name:password,..."; for local tests: real deployments keep secrets elsewhere).
# With KAFKA_SASL_SSL_PORT and KAFKA_SSL_KEYSTORE_PEM (a PEM file: the broker's unencrypted PKCS#8
# key, then its certificate chain) set, Kafka also listens there with SASL_SSL (mechanisms
# SCRAM-SHA-256 and SCRAM-SHA-512) for the users in KAFKA_SCRAM_USERS ("name:password,..."), whose
# credentials are written when the log directory is formatted (a fresh STACK_DIR). With
# KAFKA_SSL_PORT, KAFKA_SSL_KEYSTORE_PEM and KAFKA_SSL_TRUSTSTORE_PEM (the CA certificates that sign
# the clients') set, Kafka also listens there with SSL and requires a client certificate (mutual TLS).
# The broker's JVM options come from KAFKA_HEAP_OPTS and KAFKA_JVM_PERFORMANCE_OPTS as in Kafka's
# own scripts, and KAFKA_JIT_OPTS (defaults below); its GC log is $STACK_DIR/logs/kafka-gc.log.
#
# The registry keeps its schemas in Kafka (Apicurio's "kafkasql" storage: every change is a message
# on the journal topic REGISTRY_KAFKASQL_TOPIC, default kafkasql-journal, of the stack's own broker,
# created with retention.ms=-1), so schema ids survive a registry restart and stay in step with the
# messages that carry them; it is started once Kafka answers, and "start registry" alone stops with
# an error while Kafka does not answer. REGISTRY_STORAGE=mem keeps Apicurio's default in-memory
# storage instead (every schema and id is gone when the registry stops). The registry's JVM options
# come from REGISTRY_HEAP_OPTS (-Xms128m -Xmx512m).
#
# A registry behind auth (for tests of it): "infra/stack.sh start oidc" starts a Keycloak (dev mode,
# in-memory database, fetched on first use) on OIDC_PORT (8090) that imports the realm in
# OIDC_REALM_FILE (a realm JSON with the clients); with REGISTRY_OIDC_URL set (that realm's URL,
# e.g. http://127.0.0.1:8090/realms/registry) the registry requires a token of it, or HTTP basic
# auth with a client id and secret of it (Apicurio's basic client credentials, exchanged for a token).
# "start" without a service never starts Keycloak; "stop" stops it too.
# Starting an already running stack is harmless.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${STACK_DIR:-$ROOT/.stack}
STACK_DIST=${STACK_DIST:-$ROOT/.stack/dist}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
REGISTRY_PORT=${REGISTRY_PORT:-8081}
REGISTRY_STORAGE=${REGISTRY_STORAGE:-kafkasql}
REGISTRY_KAFKASQL_TOPIC=${REGISTRY_KAFKASQL_TOPIC:-kafkasql-journal}
POM=$ROOT/infra/pom.xml
prop() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$POM" | head -n 1; }
KAFKA_VERSION=$(prop kafka.version)
APICURIO_VERSION=$(prop apicurio.version)
KEYCLOAK_VERSION=$(prop keycloak.version)
KAFKA_HOME=$STACK_DIST/kafka-$KAFKA_VERSION
APICURIO_HOME=$STACK_DIST/apicurio-$APICURIO_VERSION
KEYCLOAK_HOME=$STACK_DIST/keycloak-$KEYCLOAK_VERSION
OIDC_PORT=${OIDC_PORT:-8090}
RUN=$STACK_DIR/run
LOGS=$STACK_DIR/logs

say() { printf 'stack: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH: install a JDK 17 (e.g. apt-get install openjdk-17-jre-headless)"
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  [ "${v:-0}" -ge 17 ] || die "java $v found, Kafka $KAFKA_VERSION and Apicurio need Java 17 or newer"
}

# maven NAME ARGS...: run Maven quietly on infra/pom.xml, its output in fetch.log (its tail shown on failure)
maven() {
  local name=$1
  shift
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH: install Maven (apt-get install maven)"
  mvn -q -B -f "$POM" "$@" >"$STACK_DIR/fetch.log" 2>&1 \
    || { tail -n 20 "$STACK_DIR/fetch.log" >&2; die "fetching $name failed (see $STACK_DIR/fetch.log)"; }
}

fetch() {
  if [ ! -f "$KAFKA_HOME/libs/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    say "fetching Kafka $KAFKA_VERSION jars (Maven Central)"
    maven Kafka -P kafka dependency:copy-dependencies -DoutputDirectory="$KAFKA_HOME/libs"
  fi
  if [ -z "$(registry_jar)" ]; then
    fetch_tarball Apicurio io.apicurio apicurio-registry-app "$APICURIO_VERSION" all "$APICURIO_HOME"
  fi
}

# fetch_tarball NAME GROUP ARTIFACT VERSION CLASSIFIER HOME [tar options]: a tar.gz artifact from Maven
# Central, unpacked into HOME (through HOME.part, so that an interrupted unpack is never taken for done)
fetch_tarball() {
  local name=$1 group=$2 artifact=$3 version=$4 classifier=$5 home=$6 repo file
  shift 6
  say "fetching $name $version (Maven Central)"
  maven "$name" dependency:get -Dtransitive=false -Dartifact="$group:$artifact:$version:tar.gz${classifier:+:$classifier}"
  repo=$(MAVEN_OPTS="${MAVEN_OPTS:-} -Djansi.force=false" mvn -q -B -Dstyle.color=never -f "$POM" help:evaluate -Dexpression=settings.localRepository -DforceStdout 2>>"$STACK_DIR/fetch.log" | sed "s/\x1b\[[0-9;]*m//g")
  file="$repo/${group//.//}/$artifact/$version/$artifact-$version${classifier:+-$classifier}.tar.gz"
  rm -rf "$home.part"; mkdir -p "$home.part"
  tar xzf "$file" "$@" -C "$home.part" || die "unpacking $name failed ($file)"
  rm -rf "$home"; mv "$home.part" "$home"
}

fetch_keycloak() {
  [ -x "$KEYCLOAK_HOME/bin/kc.sh" ] && return
  fetch_tarball Keycloak org.keycloak keycloak-quarkus-dist "$KEYCLOAK_VERSION" "" "$KEYCLOAK_HOME" --strip-components=1
}

registry_jar() { ls "$APICURIO_HOME"/quarkus-run.jar "$APICURIO_HOME"/*-runner.jar 2>/dev/null | head -n 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pid_alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

kafka_ready() {
  java -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$RUN/log4j2-tools.properties" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list >/dev/null 2>&1
}
registry_ready() {  # behind auth, a 401 to an anonymous request is the registry answering
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null)
  [ "$code" = 200 ] || { [ -n "${REGISTRY_OIDC_URL:-}" ] && [ "$code" = 401 ]; }
}
oidc_ready() {
  curl -fsS -o /dev/null "http://127.0.0.1:$OIDC_PORT/realms/master/.well-known/openid-configuration" 2>/dev/null
}

wait_for() { # name check timeout_s
  local name=$1 check=$2 timeout=$3 t=0
  until $check; do
    pid_alive "$name" || { tail -n 30 "$LOGS/$name.log" >&2; die "$name exited during start-up (log: $LOGS/$name.log)"; }
    [ "$t" -ge "$timeout" ] && { tail -n 30 "$LOGS/$name.log" >&2; die "$name not ready after ${timeout}s (log: $LOGS/$name.log)"; }
    sleep 1; t=$((t + 1))
  done
  say "$name ready on 127.0.0.1:$4 (${t}s)"
}

write_kafka_config() {
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT" map="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" security="" users="" pair
  if [ -n "${KAFKA_SASL_PORT:-}" ]; then
    listeners="$listeners,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT"
    map="$map,SASL_PLAINTEXT:SASL_PLAINTEXT"
    for pair in $(printf '%s' "${KAFKA_SASL_USERS:-}" | tr ',' ' '); do
      users="$users user_${pair%%:*}=\"${pair#*:}\""
    done
    security="listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$users;"
  fi
  if [ -n "${KAFKA_SASL_SSL_PORT:-}${KAFKA_SSL_PORT:-}" ]; then
    [ -f "${KAFKA_SSL_KEYSTORE_PEM:-}" ] || die "KAFKA_SASL_SSL_PORT and KAFKA_SSL_PORT need KAFKA_SSL_KEYSTORE_PEM, a PEM file with the broker's key and certificate chain"
    security="$security
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_SSL_KEYSTORE_PEM"
  fi
  if [ -n "${KAFKA_SASL_SSL_PORT:-}" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    map="$map,SASL_SSL:SASL_SSL"
    local mechanism
    security="$security
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512"
    for mechanism in scram-sha-256 scram-sha-512; do
      security="$security
listener.name.sasl_ssl.$mechanism.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    done
  fi
  if [ -n "${KAFKA_SSL_PORT:-}" ]; then
    [ -f "${KAFKA_SSL_TRUSTSTORE_PEM:-}" ] || die "KAFKA_SSL_PORT needs KAFKA_SSL_TRUSTSTORE_PEM, the CA certificates that sign the clients'"
    listeners="$listeners,SSL://127.0.0.1:$KAFKA_SSL_PORT"
    map="$map,SSL:SSL"
    security="$security
listener.name.ssl.ssl.client.auth=required
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$KAFKA_SSL_TRUSTSTORE_PEM"
  fi
  cat >"$RUN/server.properties" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=$listeners,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$map
$security
log.dirs=$STACK_DIR/kafka-data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
# the log cleaner's offset map is allocated whole at start (128 MB by default, for millions of
# keys): a few local changelogs need far less, and 128 MB more live heap kept the broker's G1
# at its marking threshold, with a concurrent cycle every few seconds under load
log.cleaner.dedupe.buffer.size=16777216
CONF
  cat >"$RUN/log4j2.properties" <<CONF
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
CONF
  cat >"$RUN/log4j2-tools.properties" <<CONF
rootLogger.level=ERROR
rootLogger.appenderRef.stderr.ref=STDERR
appender.stderr.type=Console
appender.stderr.name=STDERR
appender.stderr.target=SYSTEM_ERR
appender.stderr.layout.type=PatternLayout
appender.stderr.layout.pattern=%p %m%n
CONF
}

start_kafka() {
  if pid_alive kafka; then say "kafka already running (pid $(cat "$RUN/kafka.pid"))"; return; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is in use by another process: stop it or set KAFKA_PORT"
  port_open "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT is in use by another process: stop it or set KAFKA_CONTROLLER_PORT"
  write_kafka_config
  if [ ! -f "$STACK_DIR/kafka-data/meta.properties" ]; then
    local cid
    cid=$(java -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$RUN/log4j2-tools.properties" kafka.tools.StorageTool random-uuid 2>/dev/null)
    local scram=() pair mechanism
    for pair in $(printf '%s' "${KAFKA_SCRAM_USERS:-}" | tr ',' ' '); do
      for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
        scram+=(--add-scram "$mechanism=[name=${pair%%:*},password=${pair#*:}]")
      done
    done
    java -cp "$KAFKA_HOME/libs/*" -Dlog4j2.configurationFile="$RUN/log4j2-tools.properties" \
      kafka.tools.StorageTool format -t "$cid" -c "$RUN/server.properties" "${scram[@]}" >"$LOGS/kafka-format.log" 2>&1 \
      || { cat "$LOGS/kafka-format.log" >&2; die "formatting the Kafka log directory failed"; }
  fi
  say "starting kafka $KAFKA_VERSION"
  # The JVM options of Kafka's own start scripts (a fixed 1 GB heap, G1 with a 20 ms pause goal, a
  # GC log), plus 8 MB heap regions: with 1 MB ones each model checkpoint (a 1-2 MB message) was a
  # "humongous" allocation, and each of those starts a concurrent marking cycle.
  local heap=${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g}
  local jvm=${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:G1HeapRegionSize=8m}
  # The quick JIT compiler (C1) only, unless KAFKA_JIT_OPTS says otherwise (empty: both compilers):
  # the optimizing one (C2) went on compiling the broker's request paths for minutes after the start,
  # in bursts of a third of a core and more, and on a small machine each burst delayed the
  # transactions in flight (benchmarks/broker_jit.py).
  local jit=${KAFKA_JIT_OPTS--XX:TieredStopAtLevel=1}
  # shellcheck disable=SC2086  # the option strings are word-split on purpose
  nohup java $heap $jvm $jit "-Xlog:gc*:file=$LOGS/kafka-gc.log:time,tags:filecount=5,filesize=20M" -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$RUN/log4j2.properties" -Dkafka.logs.dir="$LOGS" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$RUN/server.properties" >>"$LOGS/kafka.log" 2>&1 &
  echo $! >"$RUN/kafka.pid"
}

start_registry() {
  if pid_alive registry; then say "registry already running (pid $(cat "$RUN/registry.pid"))"; return; fi
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is in use by another process: stop it or set REGISTRY_PORT"
  local storage=()
  case "$REGISTRY_STORAGE" in
    kafkasql)
      [ -n "${kafka_answered:-}" ] || kafka_ready || die "the registry keeps its schemas in Kafka, which does not answer on 127.0.0.1:$KAFKA_PORT: start it first (infra/stack.sh start kafka), or set REGISTRY_STORAGE=mem"
      # Apicurio creates the journal (and its snapshots and events topics) with the properties
      # under apicurio.kafkasql.topic.*: never deleted, whatever the broker's default retention.
      storage=(-Dapicurio.storage.kind=kafkasql "-Dapicurio.kafkasql.bootstrap.servers=127.0.0.1:$KAFKA_PORT"
               "-Dapicurio.kafkasql.topic=$REGISTRY_KAFKASQL_TOPIC" -Dapicurio.kafkasql.topic.retention.ms=-1) ;;
    mem) ;;
    *) die "unknown REGISTRY_STORAGE '$REGISTRY_STORAGE' (use: kafkasql, mem)" ;;
  esac
  local auth=()
  if [ -n "${REGISTRY_OIDC_URL:-}" ]; then
    auth=(-Dquarkus.oidc.tenant-enabled=true "-Dquarkus.oidc.auth-server-url=$REGISTRY_OIDC_URL"
          "-Dquarkus.oidc.token-path=$REGISTRY_OIDC_URL/protocol/openid-connect/token"
          "-Dquarkus.oidc.client-id=${REGISTRY_OIDC_CLIENT_ID:-registry-api}"
          -Dapicurio.authn.basic-client-credentials.enabled=true)
  fi
  say "starting apicurio registry $APICURIO_VERSION (storage: $REGISTRY_STORAGE)${REGISTRY_OIDC_URL:+ (auth: $REGISTRY_OIDC_URL)}"
  (cd "$APICURIO_HOME" || exit 1
    exec nohup java ${REGISTRY_HEAP_OPTS:--Xms128m -Xmx512m} "${storage[@]}" "${auth[@]}" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.log.level=WARN -Dquarkus.log.category.\"io.apicurio\".level=INFO \
    -jar "$(registry_jar)" >>"$LOGS/registry.log" 2>&1) &
  echo $! >"$RUN/registry.pid"  # the subshell execs java: this is java's pid
}

start_oidc() {
  if pid_alive oidc; then say "oidc already running (pid $(cat "$RUN/oidc.pid"))"; return; fi
  [ -f "${OIDC_REALM_FILE:-}" ] || die "starting oidc needs OIDC_REALM_FILE, a Keycloak realm JSON to import"
  port_open "$OIDC_PORT" && die "port $OIDC_PORT is in use by another process: stop it or set OIDC_PORT"
  fetch_keycloak
  rm -rf "$KEYCLOAK_HOME/data/import"; mkdir -p "$KEYCLOAK_HOME/data/import"  # (shared by every STACK_DIR)
  cp "$OIDC_REALM_FILE" "$KEYCLOAK_HOME/data/import/"
  say "starting keycloak $KEYCLOAK_VERSION"
  (export JAVA_OPTS_KC_HEAP="${OIDC_HEAP_OPTS:--Xms64m -Xmx512m}"
    exec nohup "$KEYCLOAK_HOME/bin/kc.sh" start-dev --db=dev-mem --http-host=127.0.0.1 --http-port="$OIDC_PORT" \
    --import-realm >>"$LOGS/oidc.log" 2>&1) &
  echo $! >"$RUN/oidc.pid"  # the subshell execs kc.sh, which execs java: this is java's pid
}

stop_one() {
  local name=$1
  if pid_alive "$name"; then
    local pid; pid=$(cat "$RUN/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { say "$name did not stop in 30s, killing"; kill -9 "$pid" 2>/dev/null || true; }
    say "$name stopped"
  fi
  rm -f "$RUN/$name.pid"
}

cmd=${1:-status}
only=${2:-}
case "$only" in ""|kafka|registry|oidc) ;; *) die "unknown service '$only' (use: kafka, registry, oidc)" ;; esac
mkdir -p "$STACK_DIST" "$RUN" "$LOGS"
case "$cmd" in
  fetch) fetch ;;
  start)
    need_java
    if [ "$only" = oidc ]; then start_oidc; wait_for oidc oidc_ready 180 "$OIDC_PORT"; exit 0; fi
    fetch
    if [ "$only" != registry ]; then start_kafka; wait_for kafka kafka_ready 90 "$KAFKA_PORT"; kafka_answered=1; fi
    if [ "$only" != kafka ]; then start_registry; wait_for registry registry_ready 120 "$REGISTRY_PORT"; fi
    ;;
  stop)
    case "$only" in
      "") stop_one registry; stop_one kafka; stop_one oidc ;;
      *) stop_one "$only" ;;
    esac
    ;;
  status)
    for n in kafka registry; do
      if pid_alive "$n"; then say "$n running (pid $(cat "$RUN/$n.pid"))"; else say "$n not running"; fi
    done
    if pid_alive oidc; then say "oidc running (pid $(cat "$RUN/oidc.pid"))"; fi
    ;;
  reset) stop_one registry; stop_one kafka; rm -rf "$STACK_DIR/kafka-data"; say "kafka data removed" ;;
  *) die "unknown command '$cmd' (use: fetch, start, stop, status, reset)" ;;
esac
