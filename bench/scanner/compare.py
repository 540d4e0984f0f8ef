"""Compares `laissez scan` with detect-secrets (and gitleaks, if installed)
on the same corpus, in one run, and prints a Markdown table.

Throughput is given per wall second and per CPU second (user + system time
of the tool's processes): the second is the honest per-core figure, since
Laissez scans on every core and detect-secrets does not. For Laissez tokens,
recall and false positives are checked against the corpus's planted.json.

    python3 bench/scanner/corpus.py && python3 bench/scanner/compare.py
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(command, cwd=None):
    """Runs `command`; returns (wall seconds, CPU seconds, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        sys.exit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, cpu, done.stdout


def corpus_bytes(path):
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(folder, name))
    return total


def measure(name, command, size, repeats, cwd=None):
    runs = [run(command, cwd) for _ in range(repeats)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    return {
        "tool": name,
        "wall": wall,
        "mb_s": size / wall / 1e6,
        "mb_cpu_s": size / cpu / 1e6 if cpu > 0 else float("inf"),
        "stdout": runs[-1][2],
        "size": size,
    }


def laissez_finds(stdout):
    return json.loads(stdout)["finds"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--laissez", default=os.path.join(ROOT, "target/release/laissez"))
    parser.add_argument("--corpus", default="/tmp/laissez-scan-corpus")
    parser.add_argument("--subset-mb", type=int, default=10, help="corpus share detect-secrets scans")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.corpus, "planted.json")):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/scanner/corpus.py"), "--out", args.corpus], check=True)
    with open(os.path.join(args.corpus, "planted.json")) as f:
        planted = json.load(f)
    size = corpus_bytes(args.corpus)
    laissez = [args.laissez, "scan", "--no-progress", "--format", "json"]

    rows = [
        measure("laissez scan --laissez-only", laissez + ["--laissez-only", args.corpus], size, args.repeats),
        measure("laissez scan (all rules)", laissez + [args.corpus], size, args.repeats),
    ]

    # The same corpus share for every tool slower than Laissez.
    subset = args.corpus.rstrip("/") + f"-subset-{args.subset_mb}mb"
    if not os.path.exists(subset):
        files = sorted(
            os.path.join(folder, name)
            for folder, _, names in os.walk(os.path.join(args.corpus, "src"))
            for name in names
        )
        taken = 0
        for path in files:
            if taken >= args.subset_mb << 20:
                break
            target = os.path.join(subset, os.path.relpath(path, args.corpus))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
            taken += os.path.getsize(path)
    subset_size = corpus_bytes(subset)
    rows.append(measure(f"laissez scan (all rules), {args.subset_mb} MB share", laissez + [subset], subset_size, args.repeats))
    detect = os.path.join(ROOT, ".venv/bin/detect-secrets")
    if not os.path.exists(detect):
        sys.exit("detect-secrets is missing: run `cargo test --workspace` once (it installs .venv) or pip install -r tests/interop/requirements.txt")
    # Run inside the share: from within another git repository detect-secrets
    # silently scans nothing.
    ds = measure(f"detect-secrets 1.5 scan --all-files, {args.subset_mb} MB share", [detect, "scan", "--all-files", "."], subset_size, 1, cwd=subset)
    rows.append(ds)
    gitleaks = shutil.which("gitleaks")
    if gitleaks:
        rows.append(measure("gitleaks detect --no-git", [gitleaks, "detect", "--no-git", "--report-format", "json", "--report-path", "/dev/stdout", "-s", args.corpus], size, args.repeats))

    # Recall and false positives of Laissez tokens, full corpus.
    expected = {(os.path.join("src", os.path.relpath(os.path.join(args.corpus, p["path"]), os.path.join(args.corpus, "src"))), p["line"]) for p in planted["laissez"]}
    for row in rows[:2]:
        finds = laissez_finds(row["stdout"])
        found = {
            (os.path.relpath(f["location"]["path"], args.corpus), f["location"]["line"])
            for f in finds
            if f["rule"].startswith("laissez-") and f["valid_checksum"]
        }
        row["finds"] = len(finds)
        row["recall"] = f"{len(found & expected)}/{len(expected)}"
        row["false_positives"] = len(found - expected)
    rows[2]["finds"] = len(laissez_finds(rows[2]["stdout"]))
    ds_results = json.loads(ds["stdout"])["results"]
    ds["finds"] = sum(len(v) for v in ds_results.values())
    if gitleaks:
        rows[-1]["finds"] = len(json.loads(rows[-1]["stdout"] or "[]"))

    cores = os.cpu_count()
    print(f"Corpus: {size / 1e6:.0f} MB in {planted['files']} files, {len(expected)} planted Laissez tokens, "
          f"{planted['third_party']} other planted secrets; {cores} cores; median of {args.repeats} runs (detect-secrets: 1).\n")
    print("| tool | corpus | wall | MB/s | MB per CPU-second | finds | Laissez recall | Laissez false positives |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['tool']} | {row['size'] / 1e6:.0f} MB | {row['wall']:.2f} s | {row['mb_s']:,.1f} | {row['mb_cpu_s']:,.1f} | "
              f"{row.get('finds', '')} | {row.get('recall', '')} | {row.get('false_positives', '')} |")
    ratio = rows[2]["mb_cpu_s"] / ds["mb_cpu_s"]
    print(f"\nlaissez (all rules) vs detect-secrets, per CPU-second on the same share: {ratio:,.0f}x")
    if not gitleaks:
        print("gitleaks: not installed (not in this machine's Debian package index).")


if __name__ == "__main__":
    main()
