#!/usr/bin/env python3
"""Measures how much of each document's visible text ragworker extracts, format by format,
against an independent extractor, over the corpus of scripts/fetch_format_corpus.sh.

    python3 scripts/compare_formats.py --extract target/release/examples/extract \
        [--corpus ~/.cache/ragworker/format-corpus] [--formats pptx,xlsx] [--out DIR]

References (computed once per file and cached by the file's sha256, LibreOffice being slow):
  odt, rtf          LibreOffice Writer: soffice --convert-to "txt:Text (encoded):UTF8"
  xlsx, xls, ods    LibreOffice Calc: --convert-to csv with every sheet exported (one CSV a
                    sheet; the sheet names count as visible text, as tabs)
  pptx, odp         LibreOffice Impress: --convert-to pdf, then poppler's pdftotext (what the
                    slides show; speaker notes are not in it)
  epub              the spine's XHTML documents in order (each file once), their text
                    outside head, script and style, by Python's html.parser (LibreOffice
                    does not import EPUB)
  eml               Python's email package (policy.default): Subject, From, To, Cc and Date,
                    each text/plain part, and each text/html part that has no plain
                    alternative, as text; messages attached are walked too
  csv               Python's csv module, every field

Metric: both texts become word tokens (NFKC, case-folded, runs of letters and digits; each
Han/kana character a token of its own, since those scripts don't separate words).
recall = the share of the reference's tokens (as a multiset) that ragworker's output has;
precision = the share of ragworker's tokens whose word occurs anywhere in the reference.
Precision is by word, not by count, because ragworker repeats a sheet's header names in
every row (`Name: Ada; Born: 1815`) and names slides without a title "Slide N": repeated
header words are allowed, junk (markup, base64, mis-decoded bytes) is not.

Prints, per format: files, failures, median and 10th-percentile recall, median precision,
and the worst files; writes per-file rows to OUT/formats.tsv and the texts compared to
OUT/texts/ (for reading the worst files).
"""
import argparse
import collections
import csv
import email
import email.message
import email.policy
import hashlib
import html.parser
import io
import json
import os
import posixpath
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
import zipfile
import xml.etree.ElementTree as ET

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[{CJK}]|[^\W_{CJK}]+")
REF_VERSION = "2"  # bump when a reference changes, so cached ones are recomputed

LO_TXT = "txt:Text (encoded):UTF8"
# Separator, quote, UTF-8, from line 1, default cell format, language, don't quote all
# text, detect special numbers, values as stored (not as shown), no formulas, keep spaces,
# every sheet (-1: one file per sheet, named FILE-SHEET.csv).
LO_CSV = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
REFERENCE = {
    "odt": "LibreOffice txt",
    "rtf": "LibreOffice txt",
    "xlsx": "LibreOffice csv (all sheets)",
    "xls": "LibreOffice csv (all sheets)",
    "ods": "LibreOffice csv (all sheets)",
    "pptx": "LibreOffice pdf + pdftotext",
    "odp": "LibreOffice pdf + pdftotext",
    "epub": "spine XHTML via html.parser",
    "eml": "Python email (policy.default)",
    "csv": "Python csv",
}


def tokens(text):
    return TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def score(ref_text, our_text):
    ref = collections.Counter(tokens(ref_text))
    ours = collections.Counter(tokens(our_text))
    n_ref, n_ours = sum(ref.values()), sum(ours.values())
    hit = sum(min(c, ours[w]) for w, c in ref.items())
    recall = hit / n_ref if n_ref else None
    known = sum(c for w, c in ours.items() if w in ref)
    precision = known / n_ours if n_ours else None
    missing = collections.Counter({w: c - ours[w] for w, c in ref.items() if c > ours[w]})
    extra = collections.Counter({w: c for w, c in ours.items() if w not in ref})
    return n_ref, n_ours, recall, precision, missing, extra


# ---------------------------------------------------------------- references


class _Text(html.parser.HTMLParser):
    """Visible text of an (X)HTML document: everything outside head, script and style,
    with block elements on lines of their own."""

    HIDDEN = {"head", "script", "style", "title", "template"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section",
             "header", "footer", "blockquote", "pre", "table", "dt", "dd", "td", "th"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        tag = tag.rsplit(":", 1)[-1]
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag.rsplit(":", 1)[-1] in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        tag = tag.rsplit(":", 1)[-1]
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.out.append(data)


def html_text(markup):
    p = _Text()
    p.feed(markup)
    p.close()
    return "".join(p.out)


def epub_reference(path):
    z = zipfile.ZipFile(path)
    container = ET.fromstring(z.read("META-INF/container.xml"))
    opf_path = next(e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile"))
    opf = ET.fromstring(z.read(opf_path))
    base = posixpath.dirname(opf_path)
    items = {e.get("id"): e.get("href") for e in opf.iter() if e.tag.endswith("}item") or e.tag == "item"}
    parts, seen = [], set()
    for ref in opf.iter():
        if ref.tag.endswith("itemref") and ref.get("idref") in items:
            href = posixpath.normpath(posixpath.join(base, items[ref.get("idref")].split("#")[0]))
            # A spine may name a file once per fragment (SiSU does): a reader shows it once.
            if href in seen:
                continue
            seen.add(href)
            try:
                raw = z.read(href)
            except KeyError:
                from urllib.parse import unquote
                raw = z.read(unquote(href))
            parts.append(html_text(raw.decode("utf-8", "replace")))
    return "\n".join(parts)


def eml_reference(path):
    msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    out = []

    def headers(m):
        for name in ("subject", "from", "to", "cc", "date"):
            try:
                value = m.get(name)
            except Exception:  # a header policy.default cannot parse: its raw text
                value = next((v for k, v in m.raw_items() if k.lower() == name), None)
            if value:
                out.append(str(value))

    def walk(m):
        if m.is_multipart():
            parts = [p for p in m.get_payload() if isinstance(p, email.message.Message)]
            kinds = {p.get_content_type() for p in parts}
            for p in parts:
                # Of alternatives, the plain text (what ragworker reads too).
                if (m.get_content_subtype() == "alternative" and "text/plain" in kinds
                        and p.get_content_type() != "text/plain"):
                    continue
                walk(p)
            return
        ctype = m.get_content_type()
        if ctype == "message/rfc822":
            payload = m.get_payload()
            for sub in payload if isinstance(payload, list) else [payload]:
                if isinstance(sub, email.message.Message):
                    headers(sub)
                    walk(sub)
            return
        if ctype not in ("text/plain", "text/html"):
            return
        try:
            body = m.get_content()
        except Exception:
            body = (m.get_payload(decode=True) or b"").decode("latin-1")
        out.append(html_text(body) if ctype == "text/html" else body)

    headers(msg)
    walk(msg)
    return "\n".join(out)


def decode(raw):
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    for enc in ("utf-8-sig", "shift_jis", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def csv_reference(path):
    text = decode(open(path, "rb").read())
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return "\n".join(" ".join(row) for row in csv.reader(io.StringIO(text, newline=""), dialect))


def soffice_batch(paths, target, workdir):
    """Converts `paths` with LibreOffice in one process (starting it costs seconds), in a
    private profile so that another soffice on the machine is not disturbed."""
    profile = os.path.join(workdir, "profile")
    cmd = ["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{profile}",
           "--convert-to", target, "--outdir", os.path.join(workdir, "out")] + paths
    # A session of its own, so that a hung conversion is ended with its soffice.bin child.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=60 + 20 * len(paths))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def lo_references(files, fmt, cache):
    """References made by LibreOffice for `files` (those not cached yet), in batches."""
    todo = [(f, sha) for f, sha in files if not os.path.exists(os.path.join(cache, sha + ".txt"))]
    if not todo:
        return
    print(f"  LibreOffice: {len(todo)} {fmt} files to convert", file=sys.stderr)
    for start in range(0, len(todo), 25):
        batch = todo[start:start + 25]
        with tempfile.TemporaryDirectory() as work:
            os.makedirs(os.path.join(work, "in"))
            names = []
            for f, sha in batch:
                dst = os.path.join(work, "in", f"{sha[:16]}.{fmt}")
                shutil.copy(f, dst)
                names.append(dst)
            target = {"odt": LO_TXT, "rtf": LO_TXT, "pptx": "pdf", "odp": "pdf"}.get(fmt, LO_CSV)
            soffice_batch(names, target, work)
            out = os.path.join(work, "out")
            for f, sha in batch:
                stem = sha[:16]
                produced = sorted(n for n in os.listdir(out) if n == f"{stem}.txt" or n == f"{stem}.pdf"
                                  or n.startswith(stem + "-") and n.endswith(".csv")) if os.path.isdir(out) else []
                if not produced:
                    text = None  # LibreOffice could not read it
                elif produced[0].endswith(".pdf"):
                    r = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", os.path.join(out, produced[0]), "-"],
                                       capture_output=True, timeout=120)
                    text = r.stdout.decode("utf-8", "replace")
                elif produced[0].endswith(".txt"):
                    text = open(os.path.join(out, produced[0]), encoding="utf-8-sig", errors="replace").read()
                else:
                    sheets = []
                    for n in produced:
                        rows = csv.reader(open(os.path.join(out, n), encoding="utf-8-sig", errors="replace"))
                        body = "\n".join(" ".join(r) for r in rows)
                        if body.strip():  # an empty sheet shows nothing but its tab
                            sheets.append(n[len(stem) + 1:-4] + "\n" + body)
                    text = "\n".join(sheets)
                write_cache(cache, sha, text)


def write_cache(cache, sha, text):
    with open(os.path.join(cache, sha + ".txt"), "w", encoding="utf-8") as fh:
        json.dump({"text": text}, fh)


def read_cache(cache, sha):
    with open(os.path.join(cache, sha + ".txt"), encoding="utf-8") as fh:
        return json.load(fh)["text"]


def python_reference(path, fmt):
    try:
        return {"epub": epub_reference, "eml": eml_reference, "csv": csv_reference}[fmt](path)
    except Exception as e:  # an unreadable file has no reference
        print(f"  reference failed on {path}: {e}", file=sys.stderr)
        return None


# ---------------------------------------------------------------- ragworker


def ragworker_text(extract, path):
    t0 = time.monotonic()
    try:
        r = subprocess.run([extract, path], capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "timeout (300 s)", 300.0
    seconds = time.monotonic() - t0
    try:
        out = json.loads(r.stdout)
    except ValueError:
        return None, f"crashed (exit {r.returncode}): {r.stderr.decode(errors='replace')[-200:]}", seconds
    if "error" in out:
        return None, out["error"], seconds
    return "\n\n".join(p["text"] for p in out["pages"]), "", seconds


# ---------------------------------------------------------------- report


def pct(values, q):
    """The q-quantile (nearest rank, as scripts/compare_pdf_text.py reports its p10)."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(round(q * (len(s) - 1)))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extract", required=True, help="target/release/examples/extract")
    ap.add_argument("--corpus", default=os.path.expanduser("~/.cache/ragworker/format-corpus"))
    ap.add_argument("--cache", default=None, help="reference cache (default CORPUS-ref)")
    ap.add_argument("--formats", default="", help="comma-separated, e.g. pptx,ods")
    ap.add_argument("--out", default=os.path.expanduser("~/.cache/ragworker/format-bench"))
    ap.add_argument("--worst", type=int, default=3)
    args = ap.parse_args()
    cache = args.cache or args.corpus.rstrip("/") + f"-ref-v{REF_VERSION}"
    os.makedirs(cache, exist_ok=True)
    os.makedirs(os.path.join(args.out, "texts"), exist_ok=True)

    rows = list(csv.DictReader(open(os.path.join(args.corpus, "SOURCES.tsv")), delimiter="\t"))
    wanted = set(filter(None, args.formats.split(",")))
    rows = [r for r in rows if not wanted or r["format"] in wanted]
    by_format = collections.defaultdict(list)
    for r in rows:
        by_format[r["format"]].append(r)

    for fmt, rs in sorted(by_format.items()):
        if fmt in ("odt", "rtf", "xlsx", "xls", "ods", "pptx", "odp"):
            lo_references([(os.path.join(args.corpus, r["file"]), r["sha256"]) for r in rs], fmt, cache)
        else:
            for r in rs:
                if not os.path.exists(os.path.join(cache, r["sha256"] + ".txt")):
                    write_cache(cache, r["sha256"], python_reference(os.path.join(args.corpus, r["file"]), fmt))

    results = []
    for fmt, rs in sorted(by_format.items()):
        for r in rs:
            path = os.path.join(args.corpus, r["file"])
            ref = read_cache(cache, r["sha256"])
            ours, error, seconds = ragworker_text(args.extract, path)
            res = {"format": fmt, "file": r["file"], "seconds": round(seconds, 3), "error": error,
                   "ref_tokens": 0, "our_tokens": 0, "recall": None, "precision": None,
                   "missing": "", "extra": ""}
            if ref is None:
                res["status"] = "no reference (LibreOffice/Python could not read it)"
            else:
                n_ref, n_ours, recall, precision, missing, extra = score(ref, ours or "")
                res.update(ref_tokens=n_ref, our_tokens=n_ours, precision=precision,
                           missing=" ".join(f"{w}×{c}" for w, c in missing.most_common(12)),
                           extra=" ".join(f"{w}×{c}" for w, c in extra.most_common(8)))
                if n_ref == 0:
                    res["status"] = "reference has no text"
                else:
                    res["recall"] = recall
                    res["status"] = "failed" if ours is None else "ok"
            base = os.path.join(args.out, "texts", r["file"].replace("/", "__"))
            with open(base + ".ref.txt", "w", encoding="utf-8") as fh:
                fh.write(ref or "")
            with open(base + ".ours.txt", "w", encoding="utf-8") as fh:
                fh.write(ours if ours is not None else f"ERROR: {error}")
            results.append(res)

    with open(os.path.join(args.out, "formats.tsv"), "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        cols = ["format", "file", "status", "recall", "precision", "ref_tokens", "our_tokens",
                "seconds", "error", "missing", "extra"]
        w.writerow(cols)
        for res in results:
            w.writerow([("%.3f" % res[c]) if isinstance(res[c], float) and c in ("recall", "precision")
                        else res[c] for c in cols])

    print(f"{'format':6} {'files':>5} {'scored':>6} {'failed':>6} {'median':>7} {'p10':>6} "
          f"{'min':>6} {'prec.':>6}  reference")
    summary = {}
    for fmt in sorted(by_format):
        rs = [x for x in results if x["format"] == fmt]
        scored = [x for x in rs if x["recall"] is not None]
        rec = [x["recall"] for x in scored]
        prec = [x["precision"] for x in scored if x["precision"] is not None]
        failed = sum(1 for x in scored if x["status"] == "failed")
        if rec:
            summary[fmt] = {"n": len(scored), "median": statistics.median(rec), "p10": pct(rec, 0.1)}
            print(f"{fmt:6} {len(rs):5} {len(scored):6} {failed:6} {statistics.median(rec):7.3f} "
                  f"{pct(rec, 0.1):6.3f} {min(rec):6.3f} "
                  f"{statistics.median(prec) if prec else float('nan'):6.3f}  {REFERENCE.get(fmt, '?')}")
        else:
            print(f"{fmt:6} {len(rs):5} {0:6}")
    print()
    for fmt in sorted(by_format):
        scored = sorted((x for x in results if x["format"] == fmt and x["recall"] is not None),
                        key=lambda x: x["recall"])
        for x in scored[:args.worst]:
            if x["recall"] < 0.95 or x["status"] != "ok":
                why = x["error"] or f"missing: {x['missing']}"
                print(f"  worst {fmt}: {x['recall']:.3f} {x['file']} ({x['ref_tokens']} ref tokens) {why[:160]}")
        unscored = [x for x in results if x["format"] == fmt and x["recall"] is None]
        for x in unscored:
            print(f"  unscored {fmt}: {x['file']}: {x['status']}; ragworker: {x['error'] or 'ok'}"[:200])
    with open(os.path.join(args.out, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    print(f"\nper-file rows: {os.path.join(args.out, 'formats.tsv')}; texts: {os.path.join(args.out, 'texts')}")


if __name__ == "__main__":
    main()
