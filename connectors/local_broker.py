"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, for development and tests.

The broker jars come from Maven Central through the Maven file shipped in the package
(``connectors/broker/pom.xml``; ``kafka/pom.xml`` in a source checkout links to it): ``mvn
dependency:copy-dependencies`` puts them, once, in ``~/.cache/streamrnn/kafka-VERSION/lib`` (or
``$STREAMRNN_KAFKA_HOME/lib``). The broker runs as a child process of whoever starts it, on free
ports, with its data in a work directory; :meth:`LocalBroker.stop` ends it by PID, and a stopped
broker can be started again on the same ports and data (a broker restart).

Command line (also ``python -m connectors.local_broker``)::

    streamrnn broker start   # prints the bootstrap address; data in ~/.cache/streamrnn/broker
    streamrnn broker stop
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

POM = pathlib.Path(__file__).resolve().parent / "broker" / "pom.xml"
KAFKA_VERSION = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text()).group(1)
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "streamrnn"
# one jar directory per Kafka version, so a checkout that moves to another version never mixes jars
KAFKA_HOME = pathlib.Path(os.environ.get("STREAMRNN_KAFKA_HOME") or CACHE / f"kafka-{KAFKA_VERSION}")
DEFAULT_WORKDIR = CACHE / "broker"


class BrokerError(RuntimeError):
    pass


_MAVEN_CHATTER = ("Some problems were", "The build could not", "The project ", "To see the full", "Re-run Maven",
                  "For more information", "[Help", "-> [Help")


def _first_error(output: str, limit: int = 300) -> str:
    """Maven's first specific error line (not its advice), cut to ``limit`` characters."""
    lines = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines():
        text = re.sub(r"^(\[(ERROR|FATAL)\]\s*)+", "", line.strip())
        if text and text != line.strip() and not text.startswith(_MAVEN_CHATTER):
            lines.append(text)
    return (lines[0] if lines else output.strip().splitlines()[-1] if output.strip() else "no output")[:limit]


def ensure_jars(home: pathlib.Path = KAFKA_HOME) -> pathlib.Path:
    """Fetch the broker jars with Maven if they are not there yet; return the lib directory."""
    lib = home / "lib"
    if lib.is_dir() and any(lib.glob("kafka_2.13-*.jar")):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed to fetch the Kafka broker jars: install it, or set "
                          "STREAMRNN_KAFKA_HOME to a directory whose lib/ holds them")
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / "lib.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        log = home / "mvn.log"
        log.write_text(proc.stdout + proc.stderr)
        raise BrokerError(f"mvn could not fetch the Kafka jars ({_first_error(proc.stdout + proc.stderr)}); "
                          f"its output is in {log}")
    tmp.rename(lib)
    return lib


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no owner
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


LOG4J2 = """status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
"""


class LocalBroker:
    """A KRaft broker+controller on 127.0.0.1. Use as a context manager, or start()/stop()."""

    def __init__(self, workdir: str | os.PathLike | None = None, port: int | None = None, heap: str = "512m",
                 settings: dict | None = None):
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="streamrnn-kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        state = self.workdir / "broker.json"
        if state.exists():  # a broker made earlier in this directory: keep its ports and cluster
            saved = json.loads(state.read_text())
            self.port, self.controller_port, self.cluster_id = saved["port"], saved["controller_port"], saved["cluster_id"]
        else:
            self.port = port or free_port()
            self.controller_port = free_port()
            self.cluster_id = _cluster_id()
            state.write_text(json.dumps({"port": self.port, "controller_port": self.controller_port,
                                         "cluster_id": self.cluster_id}))
        self.heap = heap
        # server.properties entries that replace or add to the defaults below
        self.settings = dict(settings or {})
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self):
        data = self.workdir / "data"
        props = f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{self.controller_port}
listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=16777216
"""
        if self.settings:
            lines = [ln for ln in props.splitlines() if ln.split("=", 1)[0] not in self.settings]
            props = "\n".join(lines + [f"{k}={v}" for k, v in self.settings.items()]) + "\n"
        (self.workdir / "server.properties").write_text(props)
        (self.workdir / "log4j2.properties").write_text(LOG4J2.format(log=self.workdir / "broker.log"))
        return data

    def _java(self, *args, **kw):
        lib = ensure_jars()
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java is needed to run the Kafka broker")
        cmd = [java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
               "-cp", f"{lib}/*", *args]
        return cmd

    def start(self, timeout: float = 90.0) -> "LocalBroker":
        if self.proc is not None and self.proc.poll() is None:
            return self
        data = self._write_config()
        if not (data / "meta.properties").exists():
            fmt = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                           "-c", str(self.workdir / "server.properties"), "--ignore-formatted"),
                capture_output=True, text=True,
            )
            if fmt.returncode != 0:
                raise BrokerError(f"formatting the broker storage failed:\n{fmt.stdout}\n{fmt.stderr}")
        out = open(self.workdir / "broker.out", "ab")
        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.workdir / "server.properties")),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
        (self.workdir / "broker.pid").write_text(str(self.proc.pid))
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"the broker exited with {self.proc.returncode}; see {self.workdir}/broker.out:\n"
                                  + self._tail())
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
                try:
                    admin.describe_cluster()
                    # ready for consumer groups too: the first group lookup on a new cluster makes
                    # the broker create its offsets topic and answers "coordinator not available"
                    # until it has, so no test's consumer meets a half-ready cluster. (The CI hang
                    # this was first added for turned out to be kafka-python's empty first
                    # assignment: see connectors.kafka.KafkaSource, ``metadata_wait``.)
                    admin.describe_groups(["streamrnn-broker-ready"])
                    return
                finally:
                    admin.close()
            except Exception as e:  # not up yet
                last = e
                time.sleep(0.5)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout:.0f} s ({last!r}):\n{self._tail()}")

    def _tail(self):
        parts = []
        for name in ("broker.out", "broker.log"):
            p = self.workdir / name
            if p.exists():
                parts.append(p.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self, timeout: float = 30.0):
        """Stop the broker we started (SIGTERM, then SIGKILL after ``timeout``)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def create_topic(self, name: str, partitions: int = 1, config: dict | None = None):
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
        finally:
            admin.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes) that does not start
    with '-': the storage tool's argument parser would read such an id as an option (one broker
    start in 64 failed so, in CI). Kafka's own ``Uuid.randomUuid`` skips those ids too."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _running_pid(workdir: pathlib.Path) -> int | None:
    """The PID in the work directory's pid file if that process is a running Kafka broker, else None
    (a stale pid file may name a process that reused the PID)."""
    try:
        pid = int((workdir / "broker.pid").read_text())
        if not pathlib.Path("/proc/self").exists():  # no procfs: only ask whether the PID lives
            os.kill(pid, 0)
            return pid
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"kafka.Kafka" in cmdline else None


def _stop_by_pidfile(workdir: pathlib.Path):
    pid = _running_pid(workdir)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def add_commands(sub):
    """The ``start``, ``stop`` and ``fetch`` sub-commands, on an argparse sub-parser collection (shared
    by ``streamrnn broker`` and ``python -m connectors.local_broker``)."""
    for name, text in (("start", "start a development broker on 127.0.0.1 (prints its bootstrap address)"),
                       ("stop", "stop the broker started in --dir"),
                       ("fetch", "fetch the broker jars from Maven Central (once)")):
        p = sub.add_parser(name, help=text)
        if name == "start":
            p.add_argument("--port", type=int, default=9092,
                           help="the broker's port on 127.0.0.1 (default 9092; 0: any free one)")
        if name != "fetch":
            p.add_argument("--dir", default=str(DEFAULT_WORKDIR),
                           help=f"work directory: data, logs, pid (default {DEFAULT_WORKDIR})")
    return sub


def run_command(args) -> int:
    if args.cmd == "fetch":
        print(ensure_jars())
        return 0
    workdir = pathlib.Path(args.dir)
    if args.cmd == "start":
        running = _running_pid(workdir) is not None
        if not running and args.port and not (workdir / "broker.json").exists() and not _port_is_free(args.port):
            raise BrokerError(f"port {args.port} on 127.0.0.1 is in use: give another with --port (0: any free one)")
        broker = LocalBroker(workdir, port=args.port or None)
        if running:
            print(f"a broker already runs in {workdir}: {broker.bootstrap}", file=sys.stderr)
            print(broker.bootstrap)
            return 0
        broker.start()
        broker.proc = None  # leave it running after we exit
        print(broker.bootstrap)
        print(f"development broker (one node, no replication, no security) in {workdir}; "
              f"stop it with: streamrnn broker stop --dir {workdir}", file=sys.stderr)
        return 0
    if _stop_by_pidfile(workdir):
        print(f"stopped the broker in {workdir}", file=sys.stderr)
        return 0
    print(f"no broker runs in {workdir}", file=sys.stderr)
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m connectors.local_broker", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(ap.add_subparsers(dest="cmd", required=True))
    try:
        return run_command(ap.parse_args(argv))
    except BrokerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
