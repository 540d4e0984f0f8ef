"""Writes a seeded, reproducible corpus for the scanner comparison.

Source-like text files (code, prose, JSON and YAML config, base64 blobs,
base62 words) full of near misses (strings shaped like Laissez tokens whose
checksum fails, `lzut_` prefixes with the wrong length), with planted valid
Laissez tokens of every kind (about one per 200 KB) and valid third-party
secrets. `planted.json` lists each planted Laissez token by file and line.

    python3 bench/scanner/corpus.py [--out DIR] [--size-mb N] [--seed S]
"""

import argparse
import json
import os
import random
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KINDS = ["ut", "at", "tt", "rt", "cs"]
FILE_SIZE = 1 << 20


def base62_checksum(data: bytes) -> str:
    value = zlib.crc32(data) & 0xFFFFFFFF
    out = ""
    for _ in range(6):
        out = ALPHABET[value % 62] + out
        value //= 62
    return out


def laissez_token(rng: random.Random, valid: bool = True) -> str:
    signed = "lz" + rng.choice(KINDS) + "_" + "".join(rng.choice(ALPHABET) for _ in range(40))
    checksum = base62_checksum(signed.encode())
    if not valid:
        # Any other six characters: a checksum failure.
        wrong = checksum
        while wrong == checksum:
            wrong = "".join(rng.choice(ALPHABET) for _ in range(6))
        checksum = wrong
    return signed + checksum


def github_token(rng: random.Random) -> str:
    body = "".join(rng.choice(ALPHABET) for _ in range(30))
    return "ghp_" + body + base62_checksum(body.encode())


def word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her all she there would their we him been has when who will more "
    "no if out so said what up its about into than them can only other new some could time these "
    "token secret password key config value user service agent deploy build release test"
).split()


def line(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.30:
        name = rng.choice(["user", "count", "items", "result", "config", "buffer", "token_count"])
        return f"    let {name}_{rng.randint(0, 999)} = compute(&{rng.choice(WORDS)}, {rng.randint(0, 10**6)});"
    if kind < 0.50:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))) + "."
    if kind < 0.62:
        return json.dumps({rng.choice(WORDS): word(rng, rng.randint(8, 40)), "id": rng.randint(0, 10**9)})
    if kind < 0.70:
        return f"{rng.choice(WORDS)}_{rng.choice(WORDS)}: {word(rng, rng.randint(4, 30))}"
    if kind < 0.80:
        return "".join(rng.choice(ALPHABET + "+/") for _ in range(76))
    if kind < 0.90:
        return " ".join(word(rng, rng.randint(3, 50)) for _ in range(rng.randint(2, 6)))
    if kind < 0.96:
        # Near misses: Laissez-shaped with a failing checksum, or a wrong length.
        choice = rng.random()
        if choice < 0.6:
            return f"example = \"{laissez_token(rng, valid=False)}\""
        return f"lzut_{word(rng, rng.choice([20, 45, 47, 60]))}"
    return f"# {rng.choice(WORDS)} {rng.choice(WORDS)} https://example.com/{word(rng, 12)}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/laissez-scan-corpus")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    planted = []
    others = 0
    total = 0
    index = 0
    while total < args.size_mb << 20:
        rel = f"src/module{index // 50:03d}/file{index:05d}.txt"
        path = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        lines = []
        size = 0
        while size < FILE_SIZE:
            roll = rng.random()
            if roll < 0.00035:
                token = laissez_token(rng)
                lines.append(f"LAISSEZ_TOKEN={token}")
                planted.append({"path": rel, "line": len(lines), "kind": token[2:4]})
            elif roll < 0.00045:
                lines.append(f"GITHUB_TOKEN={github_token(rng)}")
                others += 1
            elif roll < 0.0005:
                lines.append(f"aws_access_key_id = AKIA{''.join(rng.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567') for _ in range(16))}")
                others += 1
            else:
                lines.append(line(rng))
            size += len(lines[-1]) + 1
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        total += size
        index += 1
    with open(os.path.join(args.out, "planted.json"), "w") as f:
        json.dump({"laissez": planted, "third_party": others, "bytes": total, "files": index}, f)
    print(f"wrote {index} files, {total / 1e6:.0f} MB, {len(planted)} planted Laissez tokens, {others} other secrets into {args.out}")


if __name__ == "__main__":
    main()
