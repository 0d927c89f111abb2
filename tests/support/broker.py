"""A throwaway MQTT broker for tests when FSAR_TEST_MQTT_URL is not set.

Mosquitto when its binary is installed (as in CI), else amqtt (a pure-Python broker
from PyPI, in the test extras), on 127.0.0.1 and a free port; one per test run, shared
by every xdist worker (`shared_broker_url`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.pgcluster import free_port, run_lock
from support.tiers import refuse_in_fast_tier


class Broker:
    def __init__(self) -> None:
        refuse_in_fast_tier("an MQTT broker")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fsar-mqtt-"))
        sbin = Path("/usr/sbin/mosquitto")
        mosquitto = shutil.which("mosquitto") or (str(sbin) if sbin.exists() else None)
        if os.environ.get("FSAR_TEST_BROKER") == "amqtt":  # exercise the fresh-machine fallback
            mosquitto = None
        if mosquitto:
            conf = self.dir / "mosquitto.conf"
            conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
            cmd = [mosquitto, "-c", str(conf)]
            self.kind = "mosquitto"
        else:
            conf = self.dir / "amqtt.yaml"
            conf.write_text(
                f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{self.port}\n"
                "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
            )
            cmd = [str(Path(sys.executable).parent / "amqtt"), "-c", str(conf)]
            self.kind = "amqtt"
        self.log = (self.dir / "broker.log").open("w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start: {(self.dir / 'broker.log').read_text()[-500:]}")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def shared_broker_url(run_dir: Path) -> str:
    """The run's one broker: started by the first process that asks (it outlives that
    process), its URL, pid and directory recorded in run_dir for the others and for
    `stop_shared`."""
    state = run_dir / "broker.json"
    with run_lock(run_dir):
        if state.exists():
            return json.loads(state.read_text())["url"]
        broker = Broker()
        state.write_text(json.dumps({"url": broker.url, "pid": broker.proc.pid, "dir": str(broker.dir)}))
        return broker.url


def stop_shared(run_dir: Path) -> None:
    state = run_dir / "broker.json"
    if not state.exists():
        return
    info = json.loads(state.read_text())
    try:
        os.kill(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not _gone(info["pid"]):
            if time.monotonic() > deadline:
                os.kill(info["pid"], signal.SIGKILL)
                break
            time.sleep(0.05)
    except ProcessLookupError:
        pass
    shutil.rmtree(info["dir"], ignore_errors=True)
    state.unlink()


def _gone(pid: int) -> bool:
    """Exited: reaped here when it is this process's child, else gone or a zombie of its parent's."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"
