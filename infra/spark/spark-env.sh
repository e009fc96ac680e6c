# Spark's environment in the fraudstream-spark image (SPARK_CONF_DIR): spark-class sources this file
# before every Spark JVM it starts there, the master, a worker (whose executors inherit it) and a
# job's driver (python -m app.backfill starts its JVM through spark-submit).
#
# Each of them binds to and advertises this container's address on the compose network, which the
# other containers can reach. Left to itself Spark would advertise a host name (the one its bind
# address resolves back to: the container's id, or "localhost" for the backfill session's default
# SPARK_LOCAL_IP=127.0.0.1) that the other containers may not resolve.
SPARK_LOCAL_IP=$(python3 -c 'import socket; print(socket.gethostbyname(socket.gethostname()))')
SPARK_LOCAL_HOSTNAME=$SPARK_LOCAL_IP
export SPARK_LOCAL_IP SPARK_LOCAL_HOSTNAME
