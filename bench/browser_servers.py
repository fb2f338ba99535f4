"""The servers of make bench-browser (hyper2web, vite's dev server, caddy), the certificate
they share and the browser's trust in it.

Each server serves its own copy of the site (so an edit made for one never wakes another's
file watcher) with the certificate made by ``hyper2web certs --out``, over TLS with HTTP/2,
on 127.0.0.1 and a free port, its output going to a file in the scratch folder.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from servers import venv_script

BENCH = Path(__file__).resolve().parent
VITE_DIR = BENCH / "browser"
VITE_BIN = VITE_DIR / "node_modules" / "vite" / "bin" / "vite.js"
HOST = "127.0.0.1"


@dataclass
class Shared:
    scratch: Path
    cert: Path
    key: Path
    ca: Path
    home: Path  # HOME of the servers (hyper2web's CA lives there)
    browser_home: Path  # HOME of Chromium: its NSS database trusts the CA


def tool(name: str) -> str:
    """A console script beside this Python, else a program from PATH."""
    return venv_script(name, f"bench-browser needs {name}")


def prepare(scratch: Path) -> Shared:
    """A certificate from ``hyper2web certs`` and an NSS database that trusts its CA."""
    home = scratch / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    certs = scratch / "certs"
    done = subprocess.run([tool("hyper2web"), "certs", "--out", str(certs)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit("hyper2web certs failed:\n" + done.stdout + done.stderr)
    found = subprocess.run([tool("hyper2web"), "certs", "--ca-path"], env=env,
                           capture_output=True, text=True)
    ca = Path(found.stdout.strip())
    if found.returncode != 0 or not ca.is_file():
        raise SystemExit("hyper2web certs --ca-path failed:\n" + found.stdout + found.stderr)
    browser_home = scratch / "browser-home"
    db = browser_home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    certutil = shutil.which("certutil")
    if certutil is None:
        raise SystemExit("bench-browser needs certutil (Debian: apt-get install libnss3-tools)")
    subprocess.run([certutil, "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    subprocess.run([certutil, "-A", "-d", f"sql:{db}", "-t", "C,,", "-n",
                    "hyper2web bench CA", "-i", str(ca)], check=True)
    return Shared(scratch, certs / "localhost.crt.pem", certs / "localhost.key", ca, home,
                  browser_home)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One configuration of one server on its own copy of the site."""

    label: str  # as printed in the tables
    kind: str  # hyper2web, vite, caddy
    shared: Shared
    public: Path
    live_reload: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    config_text: str = ""
    log: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}/"

    def command(self) -> list[str]:
        shared = self.shared
        if self.kind == "hyper2web":
            return [tool("hyper2web"), "serve", str(self.public), "--host", HOST,
                    "--port", str(self.port), "--strict-port", "--cert", str(shared.cert),
                    "--key", str(shared.key), *([] if self.live_reload else ["--no-reload"])]
        if self.kind == "vite":
            return ["node", str(VITE_BIN), "--config", str(self.write_config())]
        if self.kind == "caddy":
            return ["caddy", "run", "--config", str(self.write_config()),
                    "--adapter", "caddyfile"]
        raise ValueError(self.kind)

    def write_config(self) -> Path:
        folder = self.shared.scratch / f"{self.name}-config"
        folder.mkdir(exist_ok=True)
        if self.kind == "vite":
            path = folder / "vite.config.mjs"
            self.config_text = f"""import fs from "node:fs";

export default {{
  root: {json.dumps(str(self.public))},
  cacheDir: {json.dumps(str(folder / 'vite-cache'))},
  clearScreen: false,
  server: {{
    host: "{HOST}",
    port: {self.port},
    strictPort: true,
    https: {{
      cert: fs.readFileSync({json.dumps(str(self.shared.cert))}),
      key: fs.readFileSync({json.dumps(str(self.shared.key))}),
    }},
    hmr: {'true' if self.live_reload else 'false'},
  }},
}};
"""
        else:
            path = folder / "Caddyfile"
            self.config_text = f"""{{
\tadmin off
\tauto_https off
\tservers {{
\t\tprotocols h1 h2
\t}}
}}

:{self.port} {{
\tbind {HOST}
\ttls {self.shared.cert} {self.shared.key}
\troot * {self.public}
\tfile_server
}}
"""
        path.write_text(self.config_text)
        return path

    @property
    def name(self) -> str:
        return f"{self.kind}-{'live' if self.live_reload else 'manual'}"

    def start(self) -> float:
        """Start and wait for a 200 to GET /index.html; returns the seconds it took."""
        self.port = free_port()
        command = self.command()
        self.log = self.shared.scratch / f"{self.name}.log"
        env = {**os.environ, "HOME": str(self.shared.home),
               "XDG_CONFIG_HOME": str(self.shared.home / ".config")}
        cwd = VITE_DIR if self.kind == "vite" else self.public.parent
        started = time.perf_counter()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL)
        context = ssl.create_default_context(cafile=str(self.shared.ca))
        while time.perf_counter() - started < 60:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.label} exited with code {self.proc.returncode}:\n"
                                 + self.log_tail())
            try:
                conn = http.client.HTTPSConnection(HOST, self.port, context=context, timeout=5)
                conn.request("GET", "/index.html")
                status = conn.getresponse().status
                conn.close()
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
                continue
            if status == 200:
                return time.perf_counter() - started
            raise SystemExit(f"{self.label} answered {status} to GET /index.html\n"
                             + self.log_tail())
        self.stop()
        raise SystemExit(f"{self.label} did not answer within 60 s\n" + self.log_tail())

    def shown_command(self) -> str:
        return " ".join(self.command_words())

    def command_words(self) -> list[str]:
        words = self.command()
        return [word.replace(str(self.shared.scratch), "$TMP") for word in words]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def versions() -> dict[str, str]:
    """The version of each program under test."""
    from importlib import metadata

    def run(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except OSError:
            return "not found"
        text = done.stdout.strip() or done.stderr.strip()
        return text.splitlines()[0] if text else "unknown"

    vite = VITE_DIR / "node_modules" / "vite" / "package.json"
    return {
        "hyper2web": metadata.version("hyper2web"),
        "vite": json.loads(vite.read_text())["version"] if vite.exists() else "not installed",
        "node": run(["node", "--version"]),
        "caddy": run(["caddy", "version"]),
        "chromium": run(["chromium", "--version"]),
        "playwright": metadata.version("playwright"),
    }
