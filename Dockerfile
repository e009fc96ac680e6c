# The fraud-detection worker (default target) and a Spark image with the same Python code (target "spark").
#
#   docker build -t fraudstream .                     # the worker: faust -A app worker
#   docker build -t fraudstream-spark --target spark .
#
# The bases are pinned by version; pin them by digest too (python:3.11.14-slim-bookworm@sha256:...) for
# byte-for-byte rebuilds. Maven runs only in a build stage (the Spark connector jars).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG MAVEN_IMAGE=maven:3.9.9-eclipse-temurin-17

# The Spark jobs' Kafka and Avro connectors (app/backfill/jars.py), fetched through infra/pom.xml at
# build time so that the Spark image runs its jobs without network access to Maven Central.
FROM ${MAVEN_IMAGE} AS spark-jars
COPY infra/pom.xml /build/pom.xml
RUN mvn -q -B -f /build/pom.xml -P spark dependency:copy-dependencies -DoutputDirectory=/spark-jars

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# /var/lib/fraud and the folders docker-compose.yml mounts volumes on belong to the image's user: a
# new named volume takes the owner of the folder it is mounted on, so the user can write to it.
RUN groupadd --system --gid 10001 fraud \
 && useradd --system --uid 10001 --gid fraud --home-dir /opt/fraud --shell /usr/sbin/nologin fraud \
 && mkdir -p /opt/fraud /var/lib/fraud/state /var/lib/fraud/dataset /var/lib/fraud/backfill \
 && chown -R fraud:fraud /var/lib/fraud
WORKDIR /opt/fraud
# Dependencies first (a layer that survives code edits), then the code.
COPY setup.py ./
RUN python -c "import ast, pathlib; tree = ast.parse(pathlib.Path('setup.py').read_text()); \
call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', '') == 'setup'); \
print('\\n'.join(ast.literal_eval(next(k.value for k in call.keywords if k.arg == 'install_requires'))))" \
    > /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt
COPY settings.py ./
COPY app ./app
COPY schemas ./schemas

FROM base AS spark
# Java for Spark and the [spark] extra (pyspark, pandas, pyarrow): master, workers and jobs share the
# code. The connector jars come from the spark-jars stage (FRAUD_SPARK_JARS_DIR: no fetch at run time);
# spark-env.sh makes every Spark process advertise the container's address (see the file).
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/* \
 && pip install ".[spark]"
COPY --from=spark-jars /spark-jars /opt/fraud/spark-jars
COPY infra/spark/spark-env.sh /opt/fraud/spark-conf/spark-env.sh
ENV SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    SPARK_WORKER_DIR=/var/lib/fraud/spark-work \
    PYSPARK_PYTHON=python3 \
    FRAUD_DATA_DIR=/var/lib/fraud \
    FRAUD_SPARK_JARS_DIR=/opt/fraud/spark-jars \
    SPARK_CONF_DIR=/opt/fraud/spark-conf
USER fraud
CMD ["spark-class", "org.apache.spark.deploy.master.Master"]

FROM base AS worker
RUN pip install --no-deps .
ENV FRAUD_WEB_HOST=0.0.0.0 \
    FRAUD_WEB_PORT=6066 \
    FRAUD_DATA_DIR=/var/lib/fraud
USER fraud
EXPOSE 6066
VOLUME ["/var/lib/fraud"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('FRAUD_WEB_PORT', '6066'), timeout=4).read()"]
CMD ["faust", "-A", "app", "worker", "-l", "info"]
