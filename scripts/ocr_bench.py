#!/usr/bin/env python3
"""OCR measured on scans of real text PDFs, whose true text is known.

Each chosen page of each PDF is rendered at 300 dpi (poppler's pdftoppm, grey) and made into
the inputs a user would upload: a PNG, a JPEG (quality 75), a PNG skewed by 3 degrees, a PNG
turned 90 degrees, and an image-only PDF (Pillow). Each goes through ragworker's extractor
with its default OCR settings (`examples/extract --ocr`), and its words are compared with
the page's own text layer (pdftotext): the word-sequence similarity of
scripts/compare_pdf_text.py. Prints per variant the median and 10th percentile similarity,
seconds per page and the peak memory of the extractor with its OCR processes.

    python3 scripts/ocr_bench.py EXTRACT_BIN PDF [PDF ...] [--pages N]

Needs Pillow (scripts/ocr_bench.sh makes a venv) and poppler-utils.
"""
import difflib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def words(text):
    return re.findall(r"\w+", text.lower())


def similarity(a, b):
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def page_count(pdf):
    info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def reference(pdf, page):
    out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), pdf, "-"],
                         capture_output=True, text=True, check=True).stdout
    return words(out)


def extract(binary, path):
    """Runs the extractor under GNU time; returns (words, seconds, peak KiB, error)."""
    run = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "--ocr", str(path)],
                         capture_output=True, text=True)
    peak = int(run.stderr.strip().splitlines()[-1])
    out = json.loads(run.stdout)
    if "error" in out:
        return [], out["seconds"], peak, out["error"]
    text = " ".join(p["text"] for p in out["pages"])
    return words(text), out["seconds"], peak, None


def main():
    args = sys.argv[1:]
    pages_per_pdf = 6
    if "--pages" in args:
        i = args.index("--pages")
        pages_per_pdf = int(args[i + 1])
        del args[i:i + 2]
    binary, pdfs = args[0], args[1:]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for pdf in pdfs:
            n = page_count(pdf)
            # Pages spread over the document, skipping the first (often a title page).
            chosen = sorted({min(n, 2 + k * max(1, (n - 2) // pages_per_pdf)) for k in range(pages_per_pdf)})
            for page in chosen:
                ref = reference(pdf, page)
                if len(ref) < 30:
                    continue
                stem = tmp / f"{Path(pdf).stem}-{page}"
                subprocess.run(["pdftoppm", "-r", "300", "-gray", "-png", "-singlefile",
                                "-f", str(page), "-l", str(page), pdf, str(stem)], check=True)
                image = Image.open(f"{stem}.png")
                variants = {
                    "png": f"{stem}.png",
                    "jpeg q75": f"{stem}.jpg",
                    "png skewed 3°": f"{stem}-skew.png",
                    "png turned 90°": f"{stem}-rot.png",
                    "image-only pdf": f"{stem}-scan.pdf",
                }
                image.convert("L").save(variants["jpeg q75"], quality=75)
                image.rotate(3, expand=True, fillcolor=255).save(variants["png skewed 3°"])
                image.rotate(90, expand=True, fillcolor=255).save(variants["png turned 90°"])
                image.convert("L").save(variants["image-only pdf"], resolution=300)
                for name, path in variants.items():
                    got, seconds, peak, error = extract(binary, path)
                    results.setdefault(name, []).append((similarity(ref, got), seconds, peak, error))
    print(f"{'input':<16} {'pages':>5} {'median':>7} {'p10':>6} {'s/page':>7} {'pages/s':>8} {'peak MiB':>9}  errors")
    for name, rows in results.items():
        sims = sorted(r[0] for r in rows)
        p10 = sims[max(0, round(0.1 * (len(sims) - 1)))]
        secs = statistics.mean(r[1] for r in rows)
        peak = max(r[2] for r in rows) / 1024
        errors = sorted({r[3] for r in rows if r[3]})
        print(f"{name:<16} {len(rows):>5} {statistics.median(sims):>7.3f} {p10:>6.3f} {secs:>7.2f} {1 / secs:>8.2f} {peak:>9.0f}  {'; '.join(errors)}")


if __name__ == "__main__":
    main()
