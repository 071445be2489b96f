#!/usr/bin/env python3
"""Compare ragworker's PDF text extraction with poppler's pdftotext, page by page.

Usage:
    python3 scripts/compare_pdf_text.py CORPUS_DIR RAGWORKER_PAGES_CMD [--timeout 60]
                                        [--worst 10] [--details FILE.json]
                                        [--categories SOURCES.tsv] [--before DETAILS.json]

CORPUS_DIR is searched recursively for *.pdf (scripts/fetch_pdf_corpus.sh fills one); a
single PDF file works too. RAGWORKER_PAGES_CMD is split with shlex.split, the PDF's path
is appended, and the command must print to stdout, exiting 0 either way:
    {"pages": [{"page": 1, "text": "..."}, ...], "seconds": 0.0123}     on success
    {"error": "message", "seconds": 0.0123}                            on failure
("seconds" is the extraction time the command measured itself; without it the wall time
of the command is used. If stdout is not one JSON document, its last non-empty line is
tried, so log lines before the JSON are tolerated.) A non-zero exit code, a timeout or
output that does not fit this shape counts as a ragworker failure on that file.

Reference: `pdftotext -enc UTF-8 FILE -` (poppler's reading-order mode, not -layout);
its output is split into pages on form feeds. Both tools get --timeout seconds (default
60) per file; the whole process group is killed on timeout, and a timeout is an error.

Per page, both texts are normalised: Unicode NFKC; soft hyphens and zero-width
characters removed; a hyphen at the end of a line joined to the next line ("-\\n", also
U+2010); lowercased; split on whitespace into words. Similarity is
difflib.SequenceMatcher(None, words_poppler, words_ragworker, autojunk=False).ratio(),
i.e. 2*M/T on the word sequences, so reading-order differences cost. When either side of
a page has more than --max-words (5000) words, SequenceMatcher's quadratic worst case is
avoided and the page is scored instead by the F1 of the two word multisets (1-grams):
2*|A & B| / (|A| + |B|), the same formula but ignoring order, so an upper bound of what
SequenceMatcher would give; the number of pages scored this way is reported.

Which pages count: pages are matched by number (1 .. max of both page counts; texts of a
repeated ragworker page number are joined). A page empty on both sides after
normalisation (scans, blank pages) is skipped. A page where poppler has text and
ragworker has none scores 0, and so does every page of a file ragworker failed on while
poppler read it; a page where only ragworker has text also scores 0 (counted apart). Files
pdftotext cannot read (encrypted, broken) have no reference: they are listed with what
ragworker did on them and left out of the similarity figures.

Report (stdout): number of files, pages compared, median and 10th percentile of the page
similarity (also without ragworker's failed files), pages/s of ragworker and pdftotext
over the files both read (each tool's page count summed over those files / its seconds
summed over them; pdftotext's seconds are wall time of the process, ragworker's are
its own "seconds"; its wall time is given too), ragworker's failures with their
messages, and the --worst files by mean page similarity among the files ragworker read.
Then the same figures per category of file: its files, pages compared, median and 10th
percentile, and both tools' pages/s. Categories come from the `category` column of
--categories (default CORPUS_DIR/SOURCES.tsv, as fetch_pdf_corpus.sh writes it), matched
by file name; a file it does not list is "uncategorised". With --before (a --details file
of an earlier run), each category's median, 10th percentile and page count are shown as
before -> now. The last line of stdout is `SUMMARY ` + a JSON object with the same figures. Progress goes
to stderr. Files run one after the other so that timings are not disturbed.
Standard library only.
"""
import argparse
import collections
import difflib
import json
import math
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
import unicodedata

MAX_WORDS_DEFAULT = 5000

_HYPHEN_EOL = re.compile(r"[-\u2010][ \t]*\r?\n[ \t]*")
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


def normalise_words(text):
    """NFKC, de-hyphenate line ends, lowercase, split into words."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _HYPHEN_EOL.sub("", text)
    return text.lower().split()


def similarity(ref_words, got_words, max_words=MAX_WORDS_DEFAULT):
    """Returns (score in [0, 1], method) for two word lists, not both empty."""
    if not ref_words or not got_words:
        return 0.0, "empty"
    if len(ref_words) > max_words or len(got_words) > max_words:
        a, b = collections.Counter(ref_words), collections.Counter(got_words)
        shared = sum((a & b).values())
        return 2.0 * shared / (len(ref_words) + len(got_words)), "bag-f1"
    return difflib.SequenceMatcher(None, ref_words, got_words, autojunk=False).ratio(), "seqmatch"


def percentile(values, q):
    """Linear-interpolated q-th percentile (0..100) of a non-empty list."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def run_cmd(argv, timeout):
    """Runs argv in its own process group. Returns (rc, stdout bytes, stderr bytes, wall s,
    timed_out). On timeout the whole group is killed, so a wrapper's children die too."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        return None, b"", str(e).encode(), time.perf_counter() - t0, False
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, time.perf_counter() - t0, False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
        return proc.returncode, out, err, time.perf_counter() - t0, True


def tail(data, n=300):
    text = data.decode("utf-8", "replace").strip() if isinstance(data, bytes) else str(data)
    text = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= n else "..." + text[-n:]


def run_pdftotext(path, timeout):
    """Returns dict(pages=[str], seconds) or dict(error, seconds)."""
    rc, out, err, wall, timed_out = run_cmd(["pdftotext", "-enc", "UTF-8", path, "-"], timeout)
    if timed_out:
        return {"error": "timeout after %gs" % timeout, "seconds": wall}
    if rc != 0:
        lines = [l.strip() for l in err.decode("utf-8", "replace").splitlines() if l.strip()]
        return {"error": "exit %s: %s" % (rc, tail(lines[-1]) if lines else "no message"), "seconds": wall}
    text = out.decode("utf-8", "replace")
    pages = text.split("\f")
    if pages and pages[-1].strip() == "":
        pages.pop()  # pdftotext ends every page, the last one too, with a form feed
    return {"pages": pages, "seconds": wall}


def parse_ragworker_json(stdout):
    text = stdout.decode("utf-8", "replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        return json.loads(lines[-1])
    raise ValueError("empty stdout")


def run_ragworker(cmd, path, timeout):
    """Returns dict(pages={num: text}, seconds, wall) or dict(error, seconds, wall)."""
    rc, out, err, wall, timed_out = run_cmd(cmd + [path], timeout)
    if timed_out:
        return {"error": "timeout after %gs" % timeout, "seconds": wall, "wall": wall}
    if rc is None:
        return {"error": "could not start: %s" % tail(err), "seconds": wall, "wall": wall}
    if rc != 0:
        return {"error": "exit %s: %s" % (rc, tail(err) or tail(out) or "no message"),
                "seconds": wall, "wall": wall}
    try:
        doc = parse_ragworker_json(out)
    except ValueError as e:
        return {"error": "unparsable output (%s): %s" % (e, tail(out, 200)), "seconds": wall, "wall": wall}
    if not isinstance(doc, dict):
        return {"error": "output is not a JSON object", "seconds": wall, "wall": wall}
    seconds = doc.get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        seconds = wall
    if "error" in doc:
        return {"error": str(doc["error"]) or "(empty error message)", "seconds": seconds, "wall": wall}
    pages = doc.get("pages")
    if not isinstance(pages, list):
        return {"error": "output has neither 'pages' (a list) nor 'error'", "seconds": seconds, "wall": wall}
    by_num = {}
    for item in pages:
        if (not isinstance(item, dict) or not isinstance(item.get("page"), int)
                or isinstance(item.get("page"), bool) or not isinstance(item.get("text", ""), str)):
            return {"error": "malformed page entry: %s" % tail(json.dumps(item)[:200], 200),
                    "seconds": seconds, "wall": wall}
        n = item["page"]
        by_num[n] = by_num[n] + "\n" + item.get("text", "") if n in by_num else item.get("text", "")
    return {"pages": by_num, "seconds": seconds, "wall": wall}


def compare_file(path, cmd, timeout, max_words):
    ref = run_pdftotext(path, timeout)
    got = run_ragworker(cmd, path, timeout)
    res = {"file": path, "pdftotext_seconds": ref["seconds"], "ragworker_seconds": got["seconds"],
           "ragworker_wall_seconds": got["wall"], "pdftotext_error": ref.get("error"),
           "ragworker_error": got.get("error"), "pages": []}
    res["pdftotext_pages"] = len(ref["pages"]) if "pages" in ref else None
    res["ragworker_pages"] = len(got["pages"]) if "pages" in got else None
    if "error" in ref:
        return res  # no reference: reported, but not scored
    got_pages = got.get("pages", {})
    res["ragworker_bad_page_numbers"] = sorted(n for n in got_pages if n < 1)[:20]
    numbers = set(range(1, len(ref["pages"]) + 1)) | {n for n in got_pages if n >= 1}
    for n in sorted(numbers):
        ref_words = normalise_words(ref["pages"][n - 1]) if n <= len(ref["pages"]) else []
        got_words = normalise_words(got_pages.get(n, ""))
        if not ref_words and not got_words:
            continue
        score, method = similarity(ref_words, got_words, max_words)
        res["pages"].append({"page": n, "score": score, "method": method,
                             "ref_words": len(ref_words), "got_words": len(got_words)})
    scores = [p["score"] for p in res["pages"]]
    res["mean"] = statistics.fmean(scores) if scores else None
    return res


def find_pdfs(root):
    if os.path.isfile(root):
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(".pdf"):
                found.append(os.path.join(dirpath, name))
    return found


def read_categories(path):
    """file name -> category, from a SOURCES.tsv with a `category` column ({} without one)."""
    try:
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
            if "file" not in header or "category" not in header:
                return {}
            i, j = header.index("file"), header.index("category")
            rows = (line.rstrip("\n").split("\t") for line in f)
            return {r[i]: r[j] for r in rows if len(r) > max(i, j) and r[j]}
    except OSError:
        return {}


def group_figures(results):
    """Similarity and throughput figures of a group of per-file results."""
    scored = [r for r in results if not r.get("harness_error") and not r["pdftotext_error"]]
    pages = [p["score"] for r in scored for p in r["pages"]]
    both = [r for r in scored if not r["ragworker_error"]]
    rag_s = sum(r["ragworker_seconds"] for r in both)
    ref_s = sum(r["pdftotext_seconds"] for r in both)
    return {
        "files": len(results),
        "files_scored": len(scored),
        "ragworker_failed": sum(1 for r in results if r.get("ragworker_error")),
        "pages_compared": len(pages),
        "median_similarity": statistics.median(pages) if pages else None,
        "p10_similarity": percentile(pages, 10) if pages else None,
        "ragworker_pages_per_s": sum(r["ragworker_pages"] for r in both) / rag_s if rag_s > 0 else None,
        "pdftotext_pages_per_s": sum(r["pdftotext_pages"] for r in both) / ref_s if ref_s > 0 else None,
    }


def fmt(x, digits=3):
    return "n/a" if x is None else ("%.*f" % (digits, x))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus_dir")
    ap.add_argument("ragworker_pages_cmd")
    ap.add_argument("--timeout", type=float, default=60.0, help="per file and tool, seconds (60)")
    ap.add_argument("--worst", type=int, default=10, help="how many worst files to list (10)")
    ap.add_argument("--max-words", type=int, default=MAX_WORDS_DEFAULT,
                    help="above this many words on a page, score by word-multiset F1 (5000)")
    ap.add_argument("--details", help="also write per-file and per-page results to this JSON file")
    ap.add_argument("--categories", help="SOURCES.tsv with file and category columns "
                    "(default: CORPUS_DIR/SOURCES.tsv when there is one)")
    ap.add_argument("--before", help="--details file of an earlier run: show each category's "
                    "figures as before -> now")
    args = ap.parse_args(argv)

    cmd = shlex.split(args.ragworker_pages_cmd)
    if not cmd:
        ap.error("RAGWORKER_PAGES_CMD is empty")
    if not os.path.exists(args.corpus_dir):
        ap.error("no such file or directory: %s" % args.corpus_dir)
    pdfs = find_pdfs(args.corpus_dir)
    if not pdfs:
        ap.error("no *.pdf under %s" % args.corpus_dir)
    base = args.corpus_dir if os.path.isdir(args.corpus_dir) else os.path.dirname(args.corpus_dir)
    categories = read_categories(args.categories or os.path.join(base, "SOURCES.tsv"))

    results = []
    t_start = time.perf_counter()
    for i, path in enumerate(pdfs, 1):
        rel = os.path.relpath(path, base)
        try:
            res = compare_file(path, cmd, args.timeout, args.max_words)
        except Exception as e:  # never let one file stop the run
            res = {"file": path, "harness_error": "%s: %s" % (type(e).__name__, e), "pages": [],
                   "pdftotext_error": None, "ragworker_error": None, "mean": None}
        res["file"] = rel
        res["category"] = categories.get(os.path.basename(path), "uncategorised")
        results.append(res)
        if res.get("harness_error"):
            note = "HARNESS ERROR " + res["harness_error"]
        elif res["pdftotext_error"]:
            note = "pdftotext: %s; ragworker: %s" % (
                res["pdftotext_error"], res["ragworker_error"] or "%s pages" % res["ragworker_pages"])
        elif res["ragworker_error"]:
            note = "ragworker FAILED: %s" % res["ragworker_error"]
        else:
            note = "mean %s over %d pages" % (fmt(res["mean"]), len(res["pages"]))
        print("[%d/%d] %s: %s" % (i, len(pdfs), rel, note), file=sys.stderr, flush=True)

    # Aggregate.
    scored = [r for r in results if not r.get("harness_error") and not r["pdftotext_error"]]
    all_pages = [p["score"] for r in scored for p in r["pages"]]
    read_pages = [p["score"] for r in scored if not r["ragworker_error"] for p in r["pages"]]
    both = [r for r in scored if not r["ragworker_error"]]
    rag_pages = sum(r["ragworker_pages"] for r in both)
    ref_pages = sum(r["pdftotext_pages"] for r in both)
    rag_s = sum(r["ragworker_seconds"] for r in both)
    rag_wall = sum(r["ragworker_wall_seconds"] for r in both)
    ref_s = sum(r["pdftotext_seconds"] for r in both)
    rag_failed = [r for r in results if r.get("ragworker_error")]
    ref_failed = [r for r in results if r.get("pdftotext_error")]
    harness_failed = [r for r in results if r.get("harness_error")]
    ranked = sorted((r for r in both if r["mean"] is not None), key=lambda r: (r["mean"], r["file"]))
    worst = ranked[:args.worst]
    n_only_rag = sum(1 for r in scored for p in r["pages"] if p["ref_words"] == 0)
    n_rag_empty = sum(1 for r in scored for p in r["pages"] if p["got_words"] == 0)
    n_bag = sum(1 for r in scored for p in r["pages"] if p["method"] == "bag-f1")
    n_page_mismatch = sum(1 for r in both if r["ragworker_pages"] != r["pdftotext_pages"])

    def rate(pages, seconds):
        return pages / seconds if seconds > 0 else None

    by_category = collections.defaultdict(list)
    for r in results:
        by_category[r.get("category", "uncategorised")].append(r)
    per_category = {c: group_figures(rs) for c, rs in sorted(by_category.items())}
    before = None
    if args.before:
        try:
            with open(args.before, encoding="utf-8") as f:
                before = json.load(f)["summary"]
        except (OSError, ValueError, KeyError) as e:
            print("could not read %s: %s" % (args.before, e), file=sys.stderr)

    summary = {
        "files": len(results),
        "files_scored": len(scored),
        "files_both_read": len(both),
        "pages_compared": len(all_pages),
        "median_similarity": statistics.median(all_pages) if all_pages else None,
        "p10_similarity": percentile(all_pages, 10) if all_pages else None,
        "mean_similarity": statistics.fmean(all_pages) if all_pages else None,
        "median_similarity_files_read": statistics.median(read_pages) if read_pages else None,
        "p10_similarity_files_read": percentile(read_pages, 10) if read_pages else None,
        "pages_ragworker_empty": n_rag_empty,
        "pages_only_ragworker_text": n_only_rag,
        "pages_scored_by_bag_f1": n_bag,
        "files_page_count_mismatch": n_page_mismatch,
        "files_bad_page_numbers": [r["file"] for r in both if r.get("ragworker_bad_page_numbers")],
        "ragworker_pages": rag_pages,
        "ragworker_seconds": rag_s,
        "ragworker_wall_seconds": rag_wall,
        "ragworker_pages_per_s": rate(rag_pages, rag_s),
        "ragworker_pages_per_s_wall": rate(rag_pages, rag_wall),
        "pdftotext_pages": ref_pages,
        "pdftotext_seconds": ref_s,
        "pdftotext_pages_per_s": rate(ref_pages, ref_s),
        "ragworker_failures": {r["file"]: r["ragworker_error"] for r in rag_failed},
        "pdftotext_failures": {r["file"]: r["pdftotext_error"] for r in ref_failed},
        "harness_errors": {r["file"]: r["harness_error"] for r in harness_failed},
        "worst_files": [{"file": r["file"], "category": r.get("category"), "mean_similarity": r["mean"],
                         "pages": len(r["pages"])} for r in worst],
        "categories": per_category,
        "timeout_s": args.timeout,
        "elapsed_s": time.perf_counter() - t_start,
    }

    out = []
    out.append("files: %d (%d with a pdftotext reference, %d read by both tools; "
               "ragworker failed on %d, pdftotext on %d)"
               % (len(results), len(scored), len(both), len(rag_failed), len(ref_failed)))
    out.append("pages compared: %d (both-empty pages skipped; ragworker empty where poppler has "
               "text: %d; only ragworker has text: %d; scored by bag-of-words F1: %d)"
               % (len(all_pages), n_rag_empty, n_only_rag, n_bag))
    out.append("page similarity: median %s, 10th percentile %s, mean %s"
               % (fmt(summary["median_similarity"]), fmt(summary["p10_similarity"]),
                  fmt(summary["mean_similarity"])))
    out.append("  over files ragworker read: median %s, 10th percentile %s"
               % (fmt(summary["median_similarity_files_read"]), fmt(summary["p10_similarity_files_read"])))
    out.append("files whose page counts differ: %d" % n_page_mismatch)
    bad_numbers = [r for r in both if r.get("ragworker_bad_page_numbers")]
    if bad_numbers:
        out.append("files where ragworker gave page numbers < 1 (ignored; numbering must start at 1): %s"
                   % ", ".join(r["file"] for r in bad_numbers))
    out.append("throughput over the %d files both read:" % len(both))
    out.append("  ragworker: %d pages / %.3f s = %s pages/s (wall time incl. process start: %.3f s = %s pages/s)"
               % (rag_pages, rag_s, fmt(summary["ragworker_pages_per_s"], 1), rag_wall,
                  fmt(summary["ragworker_pages_per_s_wall"], 1)))
    out.append("  pdftotext: %d pages / %.3f s = %s pages/s (wall time incl. process start)"
               % (ref_pages, ref_s, fmt(summary["pdftotext_pages_per_s"], 1)))
    out.append("ragworker failed on %d files:" % len(rag_failed))
    for r in rag_failed:
        ref_note = "pdftotext also failed: %s" % r["pdftotext_error"] if r["pdftotext_error"] else "pdftotext read %s pages" % r["pdftotext_pages"]
        out.append("  %s: %s  [%s]" % (r["file"], r["ragworker_error"], ref_note))
    ref_only = [r for r in ref_failed if not r.get("ragworker_error")]
    if ref_only:
        out.append("pdftotext failed but ragworker returned pages (%d files, not scored):" % len(ref_only))
        for r in ref_only:
            out.append("  %s: %s  [ragworker: %s pages]" % (r["file"], r["pdftotext_error"], r["ragworker_pages"]))
    if harness_failed:
        out.append("harness errors (%d files):" % len(harness_failed))
        for r in harness_failed:
            out.append("  %s: %s" % (r["file"], r["harness_error"]))
    out.append("%d worst files by mean page similarity (of files ragworker read):" % len(worst))
    for r in worst:
        out.append("  %s  %s [%s]  (%d pages compared; pages pdftotext %s, ragworker %s)"
                   % (fmt(r["mean"]), r["file"], r.get("category"), len(r["pages"]),
                      r["pdftotext_pages"], r["ragworker_pages"]))
    old = (before or {}).get("categories", {})

    def change(c, key, digits=3):
        now = per_category.get(c, {}).get(key)
        if before is None:
            return fmt(now, digits) if isinstance(now, float) or now is None else str(now)
        was = old.get(c, {}).get(key)
        show = lambda x: fmt(x, digits) if isinstance(x, float) or x is None else str(x)
        return "%s -> %s" % (show(was), show(now))

    rows = [("category", "files", "failed", "pages", "median", "p10", "ragworker p/s", "pdftotext p/s")]
    overall = dict(group_figures(results), median_similarity=summary["median_similarity"])
    for c in list(per_category) + ["ALL"]:
        if c == "ALL":
            fig, was = overall, (before or {})
            pair = lambda key, d=3: (fmt(fig.get(key), d) if before is None else
                                     "%s -> %s" % (fmt(was.get(key), d), fmt(fig.get(key), d)))
            rows.append(("ALL", str(fig["files"]), str(fig["ragworker_failed"]),
                         str(fig["pages_compared"]) if before is None
                         else "%s -> %s" % (was.get("pages_compared"), fig["pages_compared"]),
                         pair("median_similarity"), pair("p10_similarity"),
                         fmt(fig["ragworker_pages_per_s"], 1), fmt(fig["pdftotext_pages_per_s"], 1)))
            continue
        fig = per_category[c]
        rows.append((c, str(fig["files"]), str(fig["ragworker_failed"]), change(c, "pages_compared"),
                     change(c, "median_similarity"), change(c, "p10_similarity"),
                     fmt(fig["ragworker_pages_per_s"], 1), fmt(fig["pdftotext_pages_per_s"], 1)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out.append("per category (page similarity%s):" % (", before -> now" if before is not None else ""))
    for r in rows:
        out.append("  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    print("\n".join(out))
    if args.details:
        try:
            with open(args.details, "w", encoding="utf-8") as f:
                json.dump({"summary": summary, "files": results}, f, indent=1)
        except OSError as e:
            print("could not write %s: %s" % (args.details, e), file=sys.stderr)
    print("SUMMARY " + json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
