"""A real Mosquitto broker on a free loopback port, for the MQTT benchmark and the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """Mosquitto in the foreground with a generated config; ``start()`` returns once it listens."""

    def __init__(self, tmp: Path, extra_conf: str = "") -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is missing: apt-get install mosquitto (`make test` installs it)")
        self.port = free_port()
        self.conf = tmp / f"mosquitto-{self.port}.conf"
        # As root, mosquitto drops to its own user, which cannot read a private tmp dir.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}{extra_conf}"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self, timeout_s: float = 20.0) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.listening():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
