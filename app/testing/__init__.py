"""The test and benchmark harness: the local stack, workers as subprocesses, topic reads and writes,
fault injection.

Used by ``integration-test/`` (its fixtures and tests) and ``benchmarks/``, which import it as an
installed package (``pip install -e .``). The stack and the workers need the source checkout: the
stack is ``infra/stack.sh``, a worker is ``faust -A app worker`` run from it. Nothing here is
imported by the service itself. One concept per module:

* :mod:`app.testing.stack` — the shared local stack (Kafka, registry): is it running, start it for
  a block; a :class:`~app.testing.stack.PrivateStack` on its own folder and ports for faults.
* :mod:`app.testing.names` — one test's own topic names and app id.
* :mod:`app.testing.worker` — ``faust -A app worker`` on those topics, and checks on it.
* :mod:`app.testing.run` — a benchmark's run: the stack up, fresh topics, workers, all undone at the end.
* :mod:`app.testing.single_partition` — the configuration tests and benchmarks run unless told otherwise.
* :mod:`app.testing.kafka` — read, produce raw bytes, committed and end offsets, delete topics.
* :mod:`app.testing.replay` — replay rows to a test's topics, in this thread or in the background.
* :mod:`app.testing.collector` — read an output topic live in a background thread.
* :mod:`app.testing.proxy` — a TCP proxy that can be switched off (a registry that goes away).
* :mod:`app.testing.certificates` — a CA and certificates (openssl), a registry's Keycloak realm.
* :mod:`app.testing.faults` — the fault scenarios and what they count (:class:`FaultResult`).
* :mod:`app.testing.wait` — poll a condition until it holds.
* :mod:`app.testing.cpu` — CPU time of processes and of a JVM's JIT compiler threads.
* :mod:`app.testing.latency` — each transaction's send time and score time.
* :mod:`app.testing.baseline` — the service's model in a plain predict-then-learn loop.
* :mod:`app.testing.figures` — the ``key=value`` line every benchmark ends with.
"""
