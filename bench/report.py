"""Writes bench/results/latest.md and its PNG charts from the raw figures
`bench/run` collected in one run (bench/results/raw/): the comparisons with
other tools as min/median/max per side and medians of paired per-round
ratios, the store's bytes per token by table, the scanner comparison, and
Laissez's own rows, with the machine and the commit they were measured on.

    bench/.venv/bin/python bench/report.py --raw bench/results/raw --out bench/results
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LAISSEZ = ("laissez gate", "laissez serve")


def demote(text):
    """The lines of an included Markdown report, its headings one level down."""
    return ["#" + line if line.startswith("#") else line for line in text.strip().splitlines()]


def spread(values, digits=3):
    """min / median / max."""
    f = f"{{:.{digits}f}}"
    return " / ".join(f.format(v) for v in (min(values), statistics.median(values), max(values)))


def ratios(ours, theirs, key):
    """Per-round ratios ours/theirs (rounds paired by position)."""
    return [a[key] / b[key] for a, b in zip(ours, theirs) if b[key] > 0]


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return f"{os.cpu_count()} cores ({model}), {mem_kib / 1024 / 1024:.0f} GiB, Linux {platform.release()}"


def commit(raw):
    """The commit bench/run measured (recorded when it started), and any
    tracked files that differed from it."""
    with open(os.path.join(raw, "commit.txt")) as f:
        rev, *changed = f.read().split()
    return rev + (f" (with uncommitted changes to {', '.join(changed)})" if changed else "")


def http_section(http, out_dir, charts):
    lines = [
        "## Laissez next to nginx and oidc-provider",
        "",
        f"Separate processes over loopback, loaded by {http['versions']['wrk'].split(' Copyright')[0]} "
        f"(closed loop); {http['rounds']} interleaved rounds of {http['seconds']:g} s per side, the order "
        f"alternating, after {http['warmup']:g} s of warm-up load per side (Node's JIT included). "
        f"Peers: {http['versions']['nginx'].replace('nginx version: ', '')} (a plain reverse proxy, keep-alive upstream, access log on) "
        f"in front of a static answer served by the same nginx, which the gate fronts too; "
        f"oidc-provider {http['versions']['oidc-provider']} on Node {http['versions']['node']} "
        "(client credentials, ES256 JWT access tokens). Server CPU per request counts every server "
        "process a request passes through (for the gate: the gate, the app and the server taking its "
        "audit records). Laissez's gate checks the JWT (signature once "
        "per token, then expiry, audience, revocation and rules per request) and sends every decision "
        "to the audit log; every token Laissez issues is committed durably with its audit record "
        "before the answer. Latencies in ms; ratios are Laissez / peer per round, then the median "
        "[min – max].",
        "",
    ]
    for name, sides in http["comparisons"].items():
        ours_label = next(label for label in sides if label in LAISSEZ)
        peer_label = next(label for label in sides if label not in LAISSEZ)
        ours, peer = sides[ours_label], sides[peer_label]
        lines += [
            f"### {name}",
            "",
            "| side | p50 min / median / max | p99 min / median / max | requests/s min / median / max | server CPU µs per request (median) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, runs in ((peer_label, peer), (ours_label, ours)):
            lines.append(
                f"| {label} | {spread([r['p50'] for r in runs])} | {spread([r['p99'] for r in runs])} "
                f"| {spread([r['rps'] for r in runs], 0)} "
                f"| {statistics.median(r['cpu_us_per_request'] for r in runs):.0f} |")
        lines.append("")
        lines.append("| paired ratio | median | min – max |\n| --- | --- | --- |")
        for key, label in (("p50", "p50"), ("p99", "p99"), ("rps", "requests/s")):
            r = ratios(ours, peer, key)
            lines.append(f"| {label}, {ours_label} / {peer_label} | {statistics.median(r):.2f}x "
                         f"| {min(r):.2f} – {max(r):.2f} |")
        lines.append("")
        chart = "latency-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".png"
        plot_latency(name, sides, http["percentiles"], os.path.join(out_dir, chart))
        charts.append(chart)
        lines += [f"![{name}: latency by percentile]({chart})", ""]
    memory = http["memory"]
    lines += [
        "### Memory (resident set, MiB)",
        "",
        "| process | idle | after the load (peak) |",
        "| --- | --- | --- |",
    ]
    for process in memory["idle"]:
        lines.append(f"| {process} | {memory['idle'][process]['VmRSS']:.0f} "
                     f"| {memory['after'][process]['VmHWM']:.0f} |")
    lines.append("")
    return lines


def plot_latency(name, sides, percentiles, path):
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, runs in sides.items():
        # The median over rounds at each percentile.
        curve = [statistics.median(r["percentiles"][i] for r in runs) / 1000 for i in range(len(percentiles))]
        ax.plot(percentiles, curve, marker="o", markersize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency, ms (log)")
    ax.set_title(name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def store_section(text, out_dir, charts):
    match = re.search(r"^STORE (.*)$", text, re.M)
    if not match:
        raise SystemExit("bench/report.py: raw/store.md has no STORE line")
    store = json.loads(match.group(1))
    body = [l for l in text.splitlines() if not l.startswith("STORE ")]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(store["by_name"]) + 1.2))
    names = sorted(store["by_name"], key=store["by_name"].get)
    ax.barh(names, [store["by_name"][n] for n in names])
    ax.set_xlabel("bytes per issued API token")
    ax.set_title(f"Store bytes per token by table and index ({store['tokens']:,} tokens)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "store-bytes.png"), dpi=110)
    plt.close(fig)
    charts.append("store-bytes.png")
    return ["## The store", ""] + body + ["", "![store bytes per token](store-bytes.png)", ""]


def scanner_section(markdown, scanner, out_dir, charts):
    lines = ["## The scanner", ""] + demote(markdown) + [""]
    tools = scanner.get("tools")
    if tools:
        chart = plot_scanner(tools, scanner["corpus"]["bytes"], os.path.join(out_dir, "scanner-throughput.png"))
        if chart:
            charts.append("scanner-throughput.png")
            lines += ["![scanner throughput per CPU-second](scanner-throughput.png)", ""]
    return lines


def plot_scanner(tools, size, path):
    """A bar per tool: MB per CPU-second, median with min-max whiskers."""
    names, medians, lows, highs = [], [], [], []
    for name, tool in tools.items():
        rates = [size / 1e6 / r["cpu"] for r in tool["rounds"] if r["cpu"] > 0]
        if not rates:
            continue
        names.append(name)
        medians.append(statistics.median(rates))
        lows.append(statistics.median(rates) - min(rates))
        highs.append(max(rates) - statistics.median(rates))
    if not names:
        return False
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.2))
    ax.barh(names, medians, xerr=[lows, highs], capsize=3)
    ax.set_xlabel("MB scanned per CPU-second (median; whiskers: min, max)")
    ax.set_title("Scanner throughput on real code")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def summary(http, scanner, store_text):
    """The headline table: each comparison's paired ratios next to issue #14's asks."""
    def ratio(name, key):
        sides = http["comparisons"][name]
        ours = next(runs for label, runs in sides.items() if label in LAISSEZ)
        peer = next(runs for label, runs in sides.items() if label not in LAISSEZ)
        return statistics.median(ratios(ours, peer, key))

    store = json.loads(re.search(r"^STORE (.*)$", store_text, re.M).group(1))
    scan = scanner["ratios"]
    memory = http["memory"]
    gate1, gate16 = "gate, 1 connection", "gate, 16 connections"
    token = "token endpoint, client credentials, 8 connections"
    rows = [
        ("gate in front of a static app, 1 connection", "nginx",
         f"p50 {ratio(gate1, 'p50'):.2f}x, requests/s {ratio(gate1, 'rps'):.2f}x", "p50 ≤ 1.1x"),
        ("gate, 16 connections", "nginx",
         f"p50 {ratio(gate16, 'p50'):.2f}x, p99 {ratio(gate16, 'p99'):.2f}x, requests/s {ratio(gate16, 'rps'):.2f}x",
         "p50 ≤ 1.2x, requests/s ≥ 0.85x"),
        ("token endpoint, client credentials, ES256 JWT, 8 connections", "oidc-provider on Node 22, warmed up",
         f"requests/s {ratio(token, 'rps'):.2f}x, p50 {ratio(token, 'p50'):.2f}x, p99 {ratio(token, 'p99'):.2f}x",
         "requests/s ≥ 2x, p99 ≤ 0.5x"),
        ("scanner, all rules, real code (CPU-seconds)", "kingfisher, betterleaks, gitleaks",
         f"{scan['kingfisher / laissez']['median']:.1f}x less CPU than kingfisher, "
         f"{scan['betterleaks / laissez']['median']:.1f}x betterleaks, {scan['gitleaks / laissez']['median']:.1f}x gitleaks",
         "≥ 5x kingfisher"),
        ("scanner, `--laissez-only` (CPU-seconds)", "ripgrep, same literal prefixes",
         f"{1 / scan['ripgrep / laissez --laissez-only']['median']:.2f}x ripgrep's CPU", "≤ 1.3x"),
        ("store bytes per issued API token", "—",
         f"{store['total']:.0f} B ({store['audit']:.0f} B of it audit)", "≤ 350 B"),
        ("memory, resident (idle / peak under load)", "oidc-provider "
         f"{memory['idle']['oidc-provider']['VmRSS']:.0f} / {memory['after']['oidc-provider']['VmHWM']:.0f} MiB",
         f"serve {memory['idle']['serve']['VmRSS']:.0f} / {memory['after']['serve']['VmHWM']:.0f} MiB, "
         f"gate {memory['idle']['gate']['VmRSS']:.0f} / {memory['after']['gate']['VmHWM']:.0f} MiB", "keep"),
    ]
    lines = ["## Summary", "",
             "Medians of paired per-round ratios, Laissez / peer (latency: lower is better; "
             "requests/s: higher is better).", "",
             "| what | peer | Laissez | ask (issue #14) |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return lines + [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--started", required=True, help="when bench/run started, UTC")
    args = parser.parse_args()
    read = lambda name: open(os.path.join(args.raw, name)).read()
    charts = []
    lines = [
        "# Benchmark results",
        "",
        f"Written by `bench/run{' --quick' if args.quick else ''}` on "
        f"{args.started} at commit {commit(args.raw)}, "
        f"on {machine()}. Every figure below comes from that one run; client, servers and peers "
        "share the machine's cores.",
        "",
    ]
    http, scanner = json.loads(read("http.json")), json.loads(read("scanner.json"))
    lines += summary(http, scanner, read("store.md"))
    lines += http_section(http, args.out, charts)
    lines += scanner_section(read("scanner.md"), scanner, args.out, charts)
    lines += ["### Scan time as the tree grows", "",
              "`bench/scanner/growth.py`: the first quarter, half and all of the crate folders, "
              "interleaved rounds; the fixed start-up cost shows at the smallest size.", ""]
    lines += read("scan-growth.md").strip().splitlines() + [""]
    lines += store_section(read("store.md"), args.out, charts)
    lines += ["## Laissez's own figures (`laissez-bench`)", ""] + demote(read("laissez-bench.md"))
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
