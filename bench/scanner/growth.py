"""Scan time as the work grows: `laissez scan` (all rules) over the first quarter,
half and all of the crate folders of a real-code tree (the crate sources in
~/.cargo/registry/src by default), in interleaved rounds, the order
alternating. Time should grow in line with bytes: the table gives CPU
seconds and MB per CPU-second per size, and per round the ratio of each
size's CPU time per byte to the whole tree's, then the median.

    python3 bench/scanner/growth.py --laissez target/release/laissez --json-out out.json

Standard library only. Prints a Markdown table.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

import peers


def fail(message):
    sys.exit(f"bench/scanner/growth.py: {message}")


def tree_bytes(paths):
    total, files = 0, 0
    for path in paths:
        for folder, _, names in os.walk(path):
            for name in names:
                full = os.path.join(folder, name)
                if os.path.isfile(full) and not os.path.islink(full):
                    total += os.path.getsize(full)
                    files += 1
    return total, files


def scan(laissez, paths, work):
    """One scan; (wall seconds, CPU seconds of the scanner), timed as
    peers.py times every tool."""
    wall, cpu, _ = peers.run("laissez scan", [laissez, "scan", "--no-ignore", "--format", "json",
                                              "-o", os.devnull, *paths], work)
    return wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laissez", required=True)
    parser.add_argument("--corpus", default=os.path.expanduser("~/.cargo/registry/src"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args()
    if args.quick:
        args.rounds = 3
    laissez = os.path.abspath(args.laissez)
    # The crate folders, sorted, so each size is a prefix of the next.
    crates = sorted(
        os.path.join(args.corpus, registry, name)
        for registry in sorted(os.listdir(args.corpus))
        for name in os.listdir(os.path.join(args.corpus, registry))
    )
    crates = [c for c in crates if os.path.isdir(c)]
    if len(crates) < 8:
        fail(f"{args.corpus} holds {len(crates)} crate folders; too few to grow")
    sizes = {}
    for share in (0.25, 0.5, 1.0):
        paths = crates[: max(1, round(len(crates) * share))]
        total, files = tree_bytes(paths)
        sizes[share] = {"paths": paths, "bytes": total, "files": files, "wall": [], "cpu": []}
    work = tempfile.mkdtemp(prefix="laissez-scan-growth-")
    for share in sizes:  # warm the page cache
        scan(laissez, sizes[share]["paths"], work)
    for r in range(args.rounds):
        order = list(sizes) if r % 2 == 0 else list(reversed(sizes))
        for share in order:
            wall, cpu = scan(laissez, sizes[share]["paths"], work)
            sizes[share]["wall"].append(wall)
            sizes[share]["cpu"].append(cpu)
    whole = sizes[1.0]
    print("| share of the crate folders | bytes | files | CPU s min / median / max | MB per CPU-second (median) "
          "| CPU per byte, ratio to the whole tree (median of rounds) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for share, size in sizes.items():
        per_byte = [(c / size["bytes"]) / (w / whole["bytes"]) for c, w in zip(size["cpu"], whole["cpu"])]
        cpu = size["cpu"]
        print(f"| {share:.0%} | {size['bytes'] / 1e6:.0f} MB | {size['files']:,} "
              f"| {min(cpu):.2f} / {statistics.median(cpu):.2f} / {max(cpu):.2f} "
              f"| {size['bytes'] / 1e6 / statistics.median(cpu):.0f} | {statistics.median(per_byte):.2f}x |")
    with open(args.json_out, "w") as f:
        json.dump({str(k): {key: v for key, v in s.items() if key != "paths"} for k, s in sizes.items()}, f,
                  indent=1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
