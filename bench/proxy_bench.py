"""make bench-proxy: a proxied JSON route, hyper2web against nginx and caddy in front of the
same backend.

    python bench/proxy_bench.py

The backend is nginx answering GET /api/records with the bench site's JSON over plain
HTTP/1.1 (as a developer's Django or FastAPI would, only faster, so the fronts are what is
measured). Each front serves TLS + HTTP/2 and forwards /api to it: ``hyper2web serve
--proxy``, nginx ``proxy_pass`` (upstream keep-alive), caddy ``reverse_proxy``
(GOMAXPROCS=1). The fronts run on CPU 0; h2load and the backend on CPU 1. Every front's
answer is checked byte for byte against the backend's first. Reported: req/s at -c10 -m10
(median of 3 interleaved rounds) and the latency each front adds to one request at a time
(h2load -c1 -m1 mean, minus the backend's own over HTTP/1.1).
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import repo_path  # noqa: F401 - the repository root on sys.path
import servers
from loadgen import h2load
from run import prepare

from tests.server.h2client import HOST, h2_get

ROUNDS = 3
PATH = "/api/records"
MEAN = re.compile(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)")


def _nginx_conf(prefix: Path, servers_part: str) -> Path:
    """An nginx.conf in ``prefix``: one worker, no access log, long keep-alive, its
    temporary folders inside ``prefix`` (it would write to /var otherwise), and
    ``servers_part`` (upstreams and servers) in the http block."""
    prefix.mkdir(exist_ok=True)
    temp = "\n".join(f"  {name}_temp_path {prefix / name};"
                     for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    path = prefix / "nginx.conf"
    path.write_text(f"""worker_processes 1; daemon off; pid {prefix / 'pid'};
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temp}
  keepalive_requests 1000000; keepalive_timeout 3600s;
{servers_part}
}}
""")
    return path


def backend_conf(scratch: Path, port: int, body: str) -> Path:
    return _nginx_conf(scratch / "backend", f"""  server {{ listen {HOST}:{port};
    location = {PATH} {{ default_type application/json; return 200 '{body}'; }} }}""")


def nginx_front_conf(paths: servers.Paths, port: int, backend: int) -> Path:
    listen = (f"listen {HOST}:{port} ssl; http2 on;" if servers.nginx_version() >= (1, 25, 1)
              else f"listen {HOST}:{port} ssl http2;")
    return _nginx_conf(paths.scratch / "front-nginx", f"""\
  upstream backend {{ server {HOST}:{backend}; keepalive 32; }}
  server {{ {listen}
    ssl_certificate {paths.cert}; ssl_certificate_key {paths.key};
    root {paths.public};
    location /api/ {{ proxy_pass http://backend; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Host $host; }}
  }}""")


def caddyfile(paths: servers.Paths, port: int, backend: int) -> Path:
    path = paths.scratch / "Caddyfile"
    path.write_text(f"""{{
  admin off
  auto_https off
  log {{
    output discard
  }}
}}
:{port} {{
  tls {paths.cert} {paths.key}
  root * {paths.public}
  reverse_proxy /api/* {HOST}:{backend}
  file_server
}}
""")
    return path


def start(command: list[str], name: str, port: int, paths: servers.Paths,
          env: dict[str, str] | None = None, cpu: int = 0) -> subprocess.Popen[bytes]:
    log = paths.scratch / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(servers.pin(cpu) + command, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, cwd=paths.site,
                                env={**os.environ, "HOME": str(paths.home), **(env or {})})
    servers.wait_ready(proc, port, name, [log])
    return proc


def mean_ms(output: str) -> float:
    found = MEAN.search(output)
    if not found:
        return -1.0
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def main() -> int:
    for tool in ("h2load", "nginx", "caddy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench-proxy needs {tool} (Debian: apt-get install "
                             f"{'nghttp2-client' if tool == 'h2load' else tool})")
    scratch = Path(tempfile.mkdtemp(prefix="hyper2web-proxy-bench-"))
    os.chmod(scratch, 0o755)  # nginx started as root serves the site as another user
    paths = prepare(scratch)
    body = (paths.site / "records.json").read_text().strip().replace("\n", "")
    backend = servers.free_port()
    procs: list[subprocess.Popen[bytes]] = []
    fronts: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        conf = backend_conf(scratch, backend, body)
        procs.append(subprocess.Popen(servers.pin(1) + ["nginx", "-p", str(conf.parent), "-e",
                                                        str(conf.parent / "error.log"), "-c",
                                                        str(conf)]))
        direct = http.client.HTTPConnection(HOST, backend, timeout=10)
        for _ in range(100):
            try:
                direct.request("GET", PATH)
                expected = direct.getresponse().read()
                break
            except OSError:
                direct = http.client.HTTPConnection(HOST, backend, timeout=10)
                subprocess.run(["sleep", "0.05"], check=True)
        else:
            raise SystemExit("the backend did not start")
        port = servers.free_port()
        fronts["hyper2web"] = (port, start(
            [servers.venv_script("hyper2web"), "serve", str(paths.public), "--host", HOST,
             "--port", str(port), "--strict-port", "--cert", str(paths.cert), "--key",
             str(paths.key), "--no-routes", "--quiet", "--proxy",
             f"/api=http://{HOST}:{backend}"], "hyper2web", port, paths))
        port = servers.free_port()
        conf = nginx_front_conf(paths, port, backend)
        fronts["nginx"] = (port, start(["nginx", "-p", str(conf.parent), "-e",
                                        str(conf.parent / "error.log"), "-c", str(conf)],
                                       "nginx", port, paths))
        port = servers.free_port()
        fronts["caddy"] = (port, start(["caddy", "run", "--config",
                                        str(caddyfile(paths, port, backend)), "--adapter",
                                        "caddyfile"], "caddy", port, paths,
                                       env={"GOMAXPROCS": "1"}))
        for name, (proc_port, _) in fronts.items():
            result = h2_get(proc_port, PATH)
            got = b"".join(result.chunks)
            if result.status != 200 or got != expected:
                raise SystemExit(f"{name} answered {result.status} {got[:80]!r}, not the "
                                 f"backend's {expected[:80]!r}")
        rps: dict[str, list[float]] = {name: [] for name in fronts}
        for round_ in range(ROUNDS):
            order = list(fronts) if round_ % 2 == 0 else list(reversed(fronts))
            for name in order:
                run = h2load(["-D", "3", "-c", "10", "-m", "10"],
                             f"https://{HOST}:{fronts[name][0]}{PATH}", "2xx", 1)
                rps[name].append(run.rps if not run.bad else -1.0)
                print(f"  round {round_ + 1} {name}: {run.rps:,.0f} req/s", flush=True)
        base = h2load(["-D", "3", "-c", "1", "-m", "1", "--h1"],
                      f"http://{HOST}:{backend}{PATH}", "2xx", 1)
        base_ms = mean_ms(base.output)
        rows = []
        for name, (front_port, _) in fronts.items():
            one = h2load(["-D", "3", "-c", "1", "-m", "1"],
                         f"https://{HOST}:{front_port}{PATH}", "2xx", 1)
            rows.append((name, statistics.median(rps[name]), mean_ms(one.output) - base_ms))
    finally:
        for _, proc in fronts.values():
            servers.stop_process(proc)
        for proc in procs:
            servers.stop_process(proc)
    ours = next(r for r in rows if r[0] == "hyper2web")[1]
    lines = ["| front | req/s (-c10 -m10) | vs hyper2web | added latency, one request "
             "at a time (ms) |", "|---|---:|---:|---:|"]
    for name, value, added in rows:
        lines.append(f"| {name} | {value:,.0f} | {value / ours:.2f}x | {added:.3f} |")
    text = "\n".join(lines)
    print("\n" + text)
    print(f"\nbackend alone over HTTP/1.1, one request at a time: {base_ms:.3f} ms")
    (servers.BENCH / "PROXY.md").write_text(
        "# Proxied JSON: hyper2web vs nginx proxy_pass vs caddy reverse_proxy\n\n"
        + (__doc__ or "").split("\n\n", 1)[1] + "\n" + text + "\n\n"
        + f"Backend alone over HTTP/1.1, one request at a time: {base_ms:.3f} ms.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
