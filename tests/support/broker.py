"""A throwaway MQTT broker for tests when FSAR_TEST_MQTT_URL is not set.

Mosquitto when its binary is installed (as in CI), else amqtt (a pure-Python broker
from PyPI, in the test extras), on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.pgcluster import free_port


class Broker:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fsar-mqtt-"))
        mosquitto = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
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
                "listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:%d\n"
                "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
                % self.port)
            cmd = [str(Path(sys.executable).parent / "amqtt"), "-c", str(conf)]
            self.kind = "amqtt"
        self.log = (self.dir / "broker.log").open("w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
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
