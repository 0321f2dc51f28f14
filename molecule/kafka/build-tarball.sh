#!/usr/bin/env bash
# Assemble kafka_2.13-<version>.tgz offline from Maven Central, in the official tarball's layout:
#   kafka_2.13-<version>/{bin/*.sh, libs/*.jar, config/kraft/server.properties, config/*log4j.properties}
# The lab cannot reach the Apache archive; Maven Central carries the same jars. The bin/ scripts are
# minimal equivalents of the official ones (same names, same main classes, same environment variables:
# JAVA_HOME, KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_LOG4J_OPTS, KAFKA_OPTS, LOG_DIR).
#
#   molecule/kafka/build-tarball.sh [VERSION] [OUTDIR]
# Writes OUTDIR/VERSION/kafka_2.13-VERSION.tgz and its .sha512 (sha512sum format); does nothing when both exist.
set -euo pipefail

version="${1:-3.9.1}"
outdir="${2:-${XDG_CACHE_HOME:-$HOME/.cache}/toolkit/kafka}"
scala="2.13"
slf4j_version="1.7.36"
reload4j_version="1.2.25"
name="kafka_${scala}-${version}"
tarball="${outdir}/${version}/${name}.tgz"

if [[ -f "${tarball}" && -f "${tarball}.sha512" ]]; then
  echo "${tarball} exists"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
dist="${work}/${name}"
mkdir -p "${dist}/bin" "${dist}/libs" "${dist}/config/kraft"

dep() { printf '    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n' "$@"; }
{
  cat <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>toolkit.fixture</groupId>
  <artifactId>kafka-dist</artifactId>
  <version>${version}</version>
  <packaging>pom</packaging>
  <dependencies>
POM
  for artifact in "kafka_${scala}" kafka-tools kafka-server-common kafka-storage kafka-metadata kafka-raft kafka-clients; do
    dep org.apache.kafka "${artifact}" "${version}"
  done
  # The official 3.x tarball logs through slf4j -> reload4j (log4j 1.x API).
  dep org.slf4j slf4j-reload4j "${slf4j_version}"
  dep ch.qos.reload4j reload4j "${reload4j_version}"
  cat <<POM
  </dependencies>
</project>
POM
} > "${work}/pom.xml"

mvn -B -q -f "${work}/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="${dist}/libs"

# --- bin/ -------------------------------------------------------------------------------------
cat > "${dist}/bin/kafka-run-class.sh" <<'SH'
#!/bin/bash
# Minimal equivalent of Kafka's kafka-run-class.sh: classpath from libs/, JVM from JAVA_HOME.
if [ $# -lt 1 ]; then
  echo "USAGE: $0 [-daemon] [-name servicename] [-loggc] classname [opts]"
  exit 1
fi
base_dir=$(dirname "$0")/..
CLASSPATH="${CLASSPATH:+$CLASSPATH:}$base_dir/libs/*"
LOG_DIR="${LOG_DIR:-$base_dir/logs}"
mkdir -p "$LOG_DIR" 2>/dev/null || true
KAFKA_LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j.configuration=file:$base_dir/config/tools-log4j.properties}"
KAFKA_LOG4J_OPTS="-Dkafka.logs.dir=$LOG_DIR $KAFKA_LOG4J_OPTS"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx256M}"
KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
if [ -z "$JAVA_HOME" ]; then JAVA="java"; else JAVA="$JAVA_HOME/bin/java"; fi
while [ $# -gt 0 ]; do
  case "$1" in
    -daemon) DAEMON_MODE="true"; shift ;;
    -name) DAEMON_NAME=$2; shift 2 ;;
    -loggc) shift ;;
    *) break ;;
  esac
done
if [ "x$DAEMON_MODE" = "xtrue" ]; then
  nohup "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_JMX_OPTS $KAFKA_LOG4J_OPTS -cp "$CLASSPATH" $KAFKA_OPTS "$@" > "$LOG_DIR/${DAEMON_NAME:-kafka}.out" 2>&1 < /dev/null &
else
  exec "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_JMX_OPTS $KAFKA_LOG4J_OPTS -cp "$CLASSPATH" $KAFKA_OPTS "$@"
fi
SH

cat > "${dist}/bin/kafka-server-start.sh" <<'SH'
#!/bin/bash
if [ $# -lt 1 ]; then
  echo "USAGE: $0 [-daemon] server.properties [--override property=value]*"
  exit 1
fi
base_dir=$(dirname "$0")
if [ "x$KAFKA_LOG4J_OPTS" = "x" ]; then
  export KAFKA_LOG4J_OPTS="-Dlog4j.configuration=file:$base_dir/../config/log4j.properties"
fi
if [ "x$KAFKA_HEAP_OPTS" = "x" ]; then
  export KAFKA_HEAP_OPTS="-Xmx1G -Xms1G"
fi
EXTRA_ARGS=${EXTRA_ARGS-'-name kafkaServer -loggc'}
COMMAND=$1
case $COMMAND in
  -daemon) EXTRA_ARGS="-daemon "$EXTRA_ARGS; shift ;;
esac
exec "$base_dir/kafka-run-class.sh" $EXTRA_ARGS kafka.Kafka "$@"
SH

cat > "${dist}/bin/kafka-server-stop.sh" <<'SH'
#!/bin/bash
PIDS=$(ps ax | grep ' kafka\.Kafka ' | grep java | grep -v grep | awk '{print $1}')
if [ -z "$PIDS" ]; then
  echo "No kafka server to stop"
  exit 1
fi
kill -s TERM $PIDS
SH

tool() {  # tool SCRIPT MAINCLASS
  printf '#!/bin/bash\nexec "$(dirname "$0")/kafka-run-class.sh" %s "$@"\n' "$2" > "${dist}/bin/$1"
}
tool kafka-storage.sh kafka.tools.StorageTool
tool kafka-topics.sh org.apache.kafka.tools.TopicCommand
tool kafka-metadata-quorum.sh org.apache.kafka.tools.MetadataQuorumCommand
tool kafka-broker-api-versions.sh kafka.admin.BrokerApiVersionsCommand
tool kafka-console-consumer.sh org.apache.kafka.tools.consumer.ConsoleConsumer
# 3.9 still runs the console producer from the Scala core module.
tool kafka-console-producer.sh kafka.tools.ConsoleProducer
chmod 0755 "${dist}"/bin/*.sh

# Check every main class the scripts name is really in libs/.
for cls in kafka.Kafka kafka.tools.StorageTool org.apache.kafka.tools.TopicCommand \
           org.apache.kafka.tools.MetadataQuorumCommand kafka.admin.BrokerApiVersionsCommand \
           org.apache.kafka.tools.consumer.ConsoleConsumer kafka.tools.ConsoleProducer; do
  path="${cls//.//}.class"
  found=""
  for jar in "${dist}"/libs/*.jar; do
    if unzip -l "${jar}" "${path}" >/dev/null 2>&1; then found="${jar}"; break; fi
  done
  [[ -n "${found}" ]] || { echo "main class ${cls} not found in libs/" >&2; exit 1; }
done

# --- config/ ----------------------------------------------------------------------------------
cat > "${dist}/config/kraft/server.properties" <<'PROPS'
# KRaft combined mode (broker and controller in one process), as shipped in config/kraft/.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
PROPS

cat > "${dist}/config/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, stdout, kafkaAppender
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.kafkaAppender=org.apache.log4j.DailyRollingFileAppender
log4j.appender.kafkaAppender.DatePattern='.'yyyy-MM-dd-HH
log4j.appender.kafkaAppender.File=${kafka.logs.dir}/server.log
log4j.appender.kafkaAppender.layout=org.apache.log4j.PatternLayout
log4j.appender.kafkaAppender.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
PROPS

cat > "${dist}/config/tools-log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.stderr.Target=System.err
PROPS

printf 'Assembled offline from Maven Central by toolkit molecule/kafka/build-tarball.sh (test fixture).\n' > "${dist}/NOTICE.fixture"

mkdir -p "$(dirname "${tarball}")"
# Stable owner and order, so the same jars give the same archive listing.
tar -C "${work}" --sort=name --owner=0 --group=0 --numeric-owner -czf "${tarball}.tmp" "${name}"
mv "${tarball}.tmp" "${tarball}"
(cd "$(dirname "${tarball}")" && sha512sum "$(basename "${tarball}")" > "$(basename "${tarball}").sha512")
echo "${tarball}"
