#!/usr/bin/env python3
"""Score question-answer retrieval runs: hit@1, hit@5, MRR@10.

Usage: score.py WORKDIR [--json OUT]

Inputs (stdlib only, any python3):
  WORKDIR/qa.jsonl                            questions and their answers
  WORKDIR/chunks/<system>-<variant>.jsonl     chunks, one JSON object per line
  WORKDIR/ranks/<system>-<variant>.json       {"system", "variant",
      "chunk_tokens": [model tokens per chunk line],
      "queries": [{"qid", "top": [chunk line indices, best first, <= 10]}]}

Every rank file present is scored (ragworker, langchain, llamaindex, sweep
variants such as ragworker-mt96, ...).

HIT RULE
  norm(text) = the text lowercased, keeping only alphanumeric characters
  (Unicode-aware str.isalnum), so the rule is blind to spacing, punctuation
  and line-break differences between extractors (e.g. pypdf losing spaces).
  A retrieved chunk is a hit for question q iff
    - it belongs to q's document, and
    - norm(chunk content) contains some substring of norm(q's answer) of
      length L = min(60, len(norm(answer))),
  i.e. it carries ~10 words of the answer body itself, not just the heading.
  hit@k  = share of questions with a hit among the first k results;
  MRR@10 = mean over questions of 1/rank of the first hit within the first
           10 results (0 if none).
  Questions whose normalised answer is empty are dropped (count printed).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

WINDOW = 256      # all-MiniLM-L6-v2 reads at most 256 tokens; longer chunks are cut
L_MAX = 60


def norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def answer_windows(answer_norm: str) -> set[str]:
    """All distinct substrings of length L = min(60, len) of the answer."""
    size = min(L_MAX, len(answer_norm))
    return {answer_norm[i:i + size] for i in range(len(answer_norm) - size + 1)}


def is_hit(chunk_norm: str, windows: set[str]) -> bool:
    """Does the chunk contain some length-L window of the answer?"""
    return any(w in chunk_norm for w in windows)


def load_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def hit_within(first: int | None, k: int) -> int:
    """1 if the first hit is within the first k results, else 0."""
    return int(first is not None and first <= k)


def score_run(qa: dict[str, dict], chunks: list[dict], run: dict) -> dict:
    """Figures for one rank file: overall and per document."""
    chunk_norm = [norm(c["content"]) for c in chunks]
    tokens = run["chunk_tokens"]
    if len(tokens) != len(chunks):
        raise SystemExit(f"{run['system']}-{run['variant']}: {len(tokens)} chunk_tokens "
                         f"for {len(chunks)} chunks")
    hit_cache: dict[tuple[str, int], bool] = {}
    per_doc: dict[str, list[tuple[int, int, float]]] = defaultdict(list)
    firsts: dict[str, int | None] = {}
    ranked = {q["qid"]: q["top"] for q in run["queries"]}
    for qid, q in qa.items():
        top = ranked.get(qid, [])[:10]
        first = None
        for rank, idx in enumerate(top, start=1):
            if chunks[idx]["doc"] != q["doc"]:
                continue
            key = (qid, idx)
            if key not in hit_cache:
                hit_cache[key] = is_hit(chunk_norm[idx], q["windows"])
            if hit_cache[key]:
                first = rank
                break
        firsts[qid] = first
        per_doc[q["doc"]].append((hit_within(first, 1), hit_within(first, 5),
                                  1.0 / first if first else 0.0))

    def summary(rows: list[tuple[int, int, float]]) -> dict:
        n = len(rows)
        return {"n": n,
                "hit@1": sum(r[0] for r in rows) / n,
                "hit@5": sum(r[1] for r in rows) / n,
                "mrr@10": sum(r[2] for r in rows) / n}

    all_rows = [r for rows in per_doc.values() for r in rows]
    missing = sum(1 for qid in qa if qid not in ranked)
    return {"system": run["system"], "variant": run["variant"],
            "overall": summary(all_rows),
            "per_doc": {d: summary(rows) for d, rows in sorted(per_doc.items())},
            "chunks": len(chunks),
            "chunks_over_window": sum(1 for t in tokens if t > WINDOW) / max(1, len(tokens)),
            "queries_missing": missing,
            "firsts": firsts}


def print_tables(results: list[dict], docs: list[str]) -> None:
    for variant in sorted({r["variant"] for r in results}):
        runs = sorted((r for r in results if r["variant"] == variant), key=lambda r: r["system"])
        print(f"\n## Variant: {variant}\n")
        print(f"| system | hit@1 | hit@5 | MRR@10 | chunks | chunks > {WINDOW} tokens |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for r in runs:
            o = r["overall"]
            print(f"| {r['system']} | {o['hit@1']:.3f} | {o['hit@5']:.3f} | {o['mrr@10']:.3f} "
                  f"| {r['chunks']} | {100 * r['chunks_over_window']:.1f}% |")
            if r["queries_missing"]:
                print(f"<!-- {r['system']}: {r['queries_missing']} questions had no ranking -->")

        print(f"\n### Per document ({variant}): hit@1 / hit@5 / MRR@10\n")
        print("| document | n | " + " | ".join(r["system"] for r in runs) + " |")
        print("| --- | ---: |" + " --- |" * len(runs))
        for d in docs:
            cells = []
            for r in runs:
                s = r["per_doc"].get(d)
                cells.append(f"{s['hit@1']:.2f} / {s['hit@5']:.2f} / {s['mrr@10']:.2f}" if s else "-")
            n = next((r["per_doc"][d]["n"] for r in runs if d in r["per_doc"]), 0)
            print(f"| {d} | {n} | " + " | ".join(cells) + " |")

        ours = [r for r in runs if r["system"].startswith("ragworker")]
        peers = [r for r in runs if not r["system"].startswith("ragworker")]
        if ours and peers:
            print(f"\n### Ratio ragworker / peer ({variant}, overall)\n")
            print("| ragworker run | vs | hit@1 | hit@5 | MRR@10 |")
            print("| --- | --- | ---: | ---: | ---: |")
            for a in ours:
                for b in peers:
                    cells = []
                    for m in ("hit@1", "hit@5", "mrr@10"):
                        x, y = a["overall"][m], b["overall"][m]
                        cells.append(f"{x / y:.2f}" if y else "n/a")
                    print(f"| {a['system']} | {b['system']} | " + " | ".join(cells) + " |")
                    a.setdefault("ratios", {})[b["system"]] = {
                        m: (a["overall"][m] / b["overall"][m] if b["overall"][m] else None)
                        for m in ("hit@1", "hit@5", "mrr@10")}


def bootstrap_ahead(ours: dict, peer: dict, k: int, rounds: int = 2000) -> float:
    """Paired bootstrap over questions: the share of resamples in which `ours` has more
    hits within k than `peer` (ties count as not ahead). Seeded, so a run is repeatable."""
    diffs = [hit_within(ours[q], k) - hit_within(peer[q], k) for q in ours]
    rng = random.Random(1)
    n = len(diffs)
    ahead = sum(1 for _ in range(rounds) if sum(diffs[rng.randrange(n)] for _ in range(n)) > 0)
    return ahead / rounds


def print_comparisons(results: list[dict]) -> None:
    """Per ragworker run: the per-document comparisons (document x hit@1/hit@5 x variant)
    in which some peer is ahead, with how many questions, and how robust the overall
    leads are (paired bootstrap against each peer)."""
    runs = {(r["system"], r["variant"]): r for r in results}
    peers = sorted({r["system"] for r in results if not r["system"].startswith("ragworker")})
    ours = sorted({r["system"] for r in results if r["system"].startswith("ragworker")})
    if not peers or not ours:
        return
    print("\n## Where a peer leads (per document, hit@1 and hit@5, both variants)\n")
    print("| ragworker run | comparisons a peer leads | questions behind | which |")
    print("| --- | ---: | ---: | --- |")
    for system in ours:
        behind = []
        for variant in ("base", "strict"):
            mine = runs.get((system, variant))
            if not mine:
                continue
            for doc, figures in mine["per_doc"].items():
                for metric in ("hit@1", "hit@5"):
                    best = max((runs[(p, variant)]["per_doc"][doc][metric], p)
                               for p in peers if (p, variant) in runs)
                    gap = round((best[0] - figures[metric]) * figures["n"])
                    if gap > 0:
                        behind.append((f"{variant} {doc} {metric} ({best[1]})", gap))
        print(f"| {system} | {len(behind)} | {sum(g for _, g in behind)} | "
              + ("; ".join(f"{w}: {g}" for w, g in behind) or "none") + " |")

    print("\n## Robustness of the overall lead (paired bootstrap over questions, 2,000 "
          "resamples: share in which ragworker is ahead)\n")
    print("| ragworker run | variant | vs | hit@1 | hit@5 |")
    print("| --- | --- | --- | ---: | ---: |")
    for system in ours:
        for variant in ("base", "strict"):
            for peer in peers:
                a, b = runs.get((system, variant)), runs.get((peer, variant))
                if a and b:
                    cells = [f"{bootstrap_ahead(a['firsts'], b['firsts'], k):.2f}" for k in (1, 5)]
                    print(f"| {system} | {variant} | {peer} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--json", type=Path, help="write all figures as JSON to this file")
    args = ap.parse_args()
    work = args.workdir

    qa: dict[str, dict] = {}
    dropped = 0
    for q in load_jsonl(work / "qa.jsonl"):
        q["answer_norm"] = norm(q["answer"])
        if q["answer_norm"]:
            q["windows"] = answer_windows(q["answer_norm"])
            qa[q["qid"]] = q
        else:
            dropped += 1
    docs = sorted({q["doc"] for q in qa.values()})
    print(f"# Retrieval benchmark: {len(qa)} questions in {len(docs)} documents "
          f"({dropped} dropped: empty answer)")

    rank_files = sorted((work / "ranks").glob("*.json"))
    if not rank_files:
        raise SystemExit(f"no rank files in {work / 'ranks'}")
    results = []
    for path in rank_files:
        run = json.loads(path.read_text(encoding="utf-8"))
        # Chunks of sweep runs (ragworker-mt96-base) are in the matching file.
        chunks = load_jsonl(work / "chunks" / f"{run['system']}-{run['variant']}.jsonl")
        results.append(score_run(qa, chunks, run))
    print_tables(results, docs)
    print_comparisons(results)

    if args.json:
        for r in results:
            del r["firsts"]
        args.json.write_text(json.dumps({"questions": len(qa), "dropped_empty": dropped,
                                         "runs": results}, indent=2) + "\n", encoding="utf-8")
        print(f"\nfigures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
