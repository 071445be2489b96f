#!/usr/bin/env python3
"""Build the question-answer retrieval corpus for the ragworker benchmark.

Usage: corpus.py WORKDIR

Fetches real FAQ documents from pinned Debian packages (apt-get download,
cached in WORKDIR/debs), extracts them with dpkg-deb -x (nothing is installed
system-wide), parses one question/answer pair per question heading and writes:

  WORKDIR/corpus/base/<docfile>     the documents as published
  WORKDIR/corpus/strict/<docfile>   the same documents with the question text
                                    (headings, table-of-contents entries,
                                    cross-references) removed
  WORKDIR/corpus/licenses/<pkg>.copyright  each source package's copyright file
  WORKDIR/corpus/LICENSES.md        provenance and licence of every document
  WORKDIR/qa.jsonl                  {"qid", "doc", "question", "answer"} per line

Run it with the benchmark venv's python (PyMuPDF and BeautifulSoup are needed).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pymupdf
from bs4 import BeautifulSoup, Tag, XMLParsedAsHTMLWarning

# The fetchmail FAQ is XHTML with an XML declaration; read as HTML like the other pages.
warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)


# --------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------

def norm(text: str) -> str:
    """Lowercase and keep only alphanumeric characters (Unicode-aware).

    The same normalisation as the scorer's hit rule; used here to check that
    the strict variant no longer contains a question's text.
    """
    return "".join(ch for ch in text.lower() if ch.isalnum())


def words(text: str) -> str:
    """' w1 w2 ... ' of the lowercased alphanumeric words, for whole-word
    containment tests ("what is r" must not match "what is returned")."""
    return " " + " ".join(re.findall(r"[^\W_]+", text.lower())) + " "


def squash(text: str) -> str:
    """Collapse all whitespace runs to single spaces."""
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class QA:
    question: str
    answer: str


@dataclass
class Doc:
    """One benchmark document: where it comes from and how to parse it."""
    name: str            # file name in corpus/<variant>/
    package: str         # Debian binary package
    version: str         # pinned version (fallback: whatever apt offers)
    member: str          # path inside the package (".gz" is decompressed)
    licence: str         # short licence statement for LICENSES.md
    parse: Callable[[Path], list[QA]]
    strip: Callable[[Path, Path, list[QA]], None]   # base -> strict writer
    used_version: str = field(default="")


# --------------------------------------------------------------------------
# PDF documents (PyMuPDF)
# --------------------------------------------------------------------------

# Extract text with ligatures expanded ("ﬁ" -> "fi") so it matches outlines.
PDF_TEXT_FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP


def pdf_body_text(pdf: pymupdf.Document, first_page: int,
                  drop_header: Callable[[list[str]], list[str]]) -> str:
    """Concatenated text of pages first_page.., running headers dropped."""
    parts = []
    for page in pdf.pages(first_page):
        lines = page.get_text(flags=PDF_TEXT_FLAGS).splitlines()
        parts.append("\n".join(drop_header(lines)))
    return "\n".join(parts)


def outline_entries(pdf: pymupdf.Document) -> list[tuple[int, str, str, int]]:
    """(level, section number, title, 0-based page) for every outline entry,
    numbered from the outline's hierarchy (1, 1.1, 1.1.1); a number the
    title itself starts with ('3 R and S') is taken off the title."""
    counters: list[int] = []
    out = []
    for level, title, page in pdf.get_toc():
        counters = counters[:level]
        while len(counters) < level:
            counters.append(0)
        counters[level - 1] += 1
        number = ".".join(map(str, counters))
        title = re.sub(r"^" + re.escape(number) + r"\s+", "", title.strip())
        out.append((level, number, title, page - 1))
    return out


QUOTES = "'\"`‘’“”"


def heading_regex(number: str, title: str) -> re.Pattern:
    """A heading line: its section number, then the title words separated by
    any whitespace (titles wrap over lines), case-insensitive; outlines use
    ASCII quotes where the page has typographic ones."""
    quote = "[" + re.escape(QUOTES) + "]"
    words = ["".join(quote if c in QUOTES else re.escape(c) for c in w) for w in title.split()]
    return re.compile(r"(?m)^[ \t]*" + re.escape(number) + r"\.?\s+" + r"\s+".join(words),
                      re.IGNORECASE)


def split_pdf_answers(text: str, entries: list[tuple[int, str, str, int]],
                      heading_end: Callable[[str, int], int]) -> list[QA]:
    """Find all outline headings in order in `text`. Entries below chapter
    level are questions, answer = text up to the next heading of any level;
    chapter headings only end answers (chapter intros are not used).

    heading_end(text, match_end) returns where a question heading really
    ends (for outlines that truncate long titles)."""
    spans = []
    pos = 0
    for level, number, title, _ in entries:
        m = heading_regex(number, title).search(text, pos)
        if m is None:
            raise SystemExit(f"PDF heading not found: {number} {title!r}")
        end = heading_end(text, m.end()) if level >= 2 else m.end()
        title_full = re.sub(r"^\s*" + re.escape(number) + r"\.?\s*", "", text[m.start():end])
        spans.append((level, m.start(), end, squash(title_full)))
        pos = end
    qas = []
    for i, (level, _, end, title_full) in enumerate(spans):
        if level >= 2:
            stop = spans[i + 1][1] if i + 1 < len(spans) else len(text)
            qas.append(QA(title_full, squash(text[end:stop])))
    return qas


def rfaq_drop_header(lines: list[str]) -> list[str]:
    """R FAQ pages start with a running header 'Chapter N: Title' / page no."""
    if len(lines) >= 2 and re.match(r"^(Chapter \d+: |Appendix )", lines[0]) \
            and lines[1].strip().isdigit():
        return lines[2:]
    if lines and lines[0].strip().isdigit():    # chapter openers: bare page no.
        return lines[1:]
    return lines


def parse_pdf_outline(path: Path, drop_header: Callable[[list[str]], list[str]],
                      heading_end: Callable[[str, int], int]) -> list[QA]:
    """Questions are the outline's entries below chapter level; the body is
    read from the first chapter's page on (skipping title and TOC pages)."""
    pdf = pymupdf.open(path)
    entries = outline_entries(pdf)
    text = pdf_body_text(pdf, entries[0][3], drop_header)
    return split_pdf_answers(text, entries, heading_end)


def parse_rfaq(path: Path) -> list[QA]:
    """R FAQ (texinfo -> pdfTeX): questions are the sections and subsections
    (2.1 What is R?, 2.5.1 How can R be installed (Unix-like)); a section
    that only holds subsections gets an empty answer (dropped by the scorer);
    the last chapter (Acknowledgments) has no sections."""
    return parse_pdf_outline(path, rfaq_drop_header, lambda _text, end: end)


def simh_heading_end(text: str, end: int) -> int:
    """SIMH outline titles are cut at 60 characters: the heading runs on to
    the first blank line (Word puts an empty paragraph after each heading)."""
    m = re.compile(r"\n[ \t]*\n").search(text, end)
    return m.start() if m else end


def parse_simh(path: Path) -> list[QA]:
    """SIMH FAQ (Word -> Acrobat Distiller): outline has chapters and their
    numbered questions; body headings read '1.1  What is SIMH?'."""
    return parse_pdf_outline(path, lambda lines: lines, simh_heading_end)


SECTION_NUMBER = re.compile(r"^\s*(Section\s+)?\d+(\.\d+)*\.?\s")


def strip_pdf(base: Path, strict: Path, qas: list[QA]) -> None:
    """Redact every occurrence of each question (headings, TOC entries,
    cross-references like 'Section 2.5 [How can R be installed?]').

    search_for() is case-insensitive and follows a match over line breaks, so
    wrapped headings are found whole. Short titles (< 4 words, e.g. 'Models',
    'Notation') also occur as ordinary words in answers: for them only hits on
    a line that starts with a section number (heading or TOC entry) or right
    after '[' (texinfo cross-reference) are redacted."""
    pdf = pymupdf.open(base)
    for page in pdf:
        for qa in qas:
            short = len(qa.question.split()) < 4
            for rect in page.search_for(qa.question):
                if short:
                    line = page.get_textbox(pymupdf.Rect(0, rect.y0 + 1, page.rect.width, rect.y1 - 1))
                    before = page.get_textbox(pymupdf.Rect(rect.x0 - 8, rect.y0 + 1, rect.x0 + 1, rect.y1 - 1))
                    if not (SECTION_NUMBER.match(line) or "[" in before):
                        continue
                page.add_redact_annot(rect)
        # Only text goes; images and vector graphics are left alone.
        page.apply_redactions(images=pymupdf.PDF_REDACT_IMAGE_NONE,
                              graphics=pymupdf.PDF_REDACT_LINE_ART_NONE)
    pdf.save(strict, garbage=3, deflate=True)


def pdf_plain_text(path: Path) -> str:
    return "\n".join(p.get_text(flags=PDF_TEXT_FLAGS) for p in pymupdf.open(path))


# --------------------------------------------------------------------------
# HTML documents (Sphinx-built Django FAQ pages)
# --------------------------------------------------------------------------

def django_headings(soup: BeautifulSoup) -> list[Tag]:
    """Question headings: h2/h3 inside the page body (not the sidebar)."""
    body = soup.find("div", class_="yui-g")
    return body.find_all(["h2", "h3"])


def heading_text(h: Tag) -> str:
    """Heading text without Sphinx's '¶' permalink."""
    return squash("".join(s for s in h.find_all(string=True)
                          if not (s.parent.name == "a" and "headerlink" in s.parent.get("class", []))))


def answer_after(h: Tag, stop: Callable[[Tag], bool]) -> str:
    """The text after heading `h` (its own text left out) up to the first element `stop`
    accepts."""
    parts = []
    for node in h.next_elements:
        if isinstance(node, Tag) and stop(node):
            break
        if isinstance(node, str) and h not in node.parents:
            parts.append(str(node))
    return squash("".join(parts))


def names_a_question(a: Tag, questions: set[str]) -> bool:
    """Does link `a`'s text contain one of the (normalised) questions? (A table of
    contents entry or an in-page reference: the strict variant removes it.)"""
    return any(q in norm(a.get_text()) for q in questions)


def parse_django(path: Path) -> list[QA]:
    """Each h2 is a question; its answer is the text of the following
    elements up to the next heading."""
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "lxml")
    return [QA(heading_text(h), answer_after(h, lambda t: t.name in ("h1", "h2", "h3")))
            for h in django_headings(soup)]


def strip_django(base: Path, strict: Path, qas: list[QA]) -> None:
    """Remove the question headings, every link whose text contains a
    question (sidebar TOC, in-page references) and the ids/anchors made from
    the questions (Sphinx slugs such as 'is-django-stable' would otherwise
    leak the question into readers that read raw HTML)."""
    soup = BeautifulSoup(base.read_text(encoding="utf-8"), "lxml")
    questions = {norm(qa.question) for qa in qas}
    slugs = set()
    for h in django_headings(soup):
        section = h.find_parent("div", class_="section")
        anchor = h.find_previous_sibling("span")
        for node in (section, anchor):
            if node is not None and node.get("id"):
                slugs.add(node["id"].removeprefix("s-"))
                del node["id"]
        h.decompose()
    for a in soup.find_all("a"):
        href = a.get("href", "")
        if names_a_question(a, questions):
            a.decompose()
        elif "#" in href and href.split("#", 1)[1].removeprefix("s-") in slugs:
            del a["href"]
    strict.write_text(str(soup), encoding="utf-8")


# --------------------------------------------------------------------------
# HTML document (fetchmail FAQ: hand-written HTML, h1 categories, h2 questions)
# --------------------------------------------------------------------------

FETCHMAIL_ID = re.compile(r"^[A-Z]\d+$")


def fetchmail_headings(soup: BeautifulSoup) -> list[Tag]:
    """Question headings: an h2 holding an anchor named like 'G1' (the detailed contents'
    category h2s have ids such as 'C_G' and no anchor)."""
    return [h for h in soup.find_all("h2")
            if (a := h.find("a")) is not None and FETCHMAIL_ID.match(a.get("name") or a.get("id") or "")]


def parse_fetchmail(path: Path) -> list[QA]:
    """Each question h2 ('G1. What is fetchmail and why should I bother?'); its answer is
    the text up to the next heading or the page footer."""
    soup = BeautifulSoup(path.read_bytes(), "lxml")

    def stop(t: Tag) -> bool:
        return t.name in ("h1", "h2") or (t.name == "table" and "footer" in (t.get("summary") or ""))

    return [QA(re.sub(r"^[A-Z]\d+\.\s*", "", squash(h.get_text(" "))), answer_after(h, stop))
            for h in fetchmail_headings(soup)]


def strip_fetchmail(base: Path, strict: Path, qas: list[QA]) -> None:
    """Remove the question headings and the detailed contents' links to them (their ids,
    'G1', say nothing of the question)."""
    soup = BeautifulSoup(base.read_bytes(), "lxml")
    questions = {norm(qa.question) for qa in qas}
    for h in fetchmail_headings(soup):
        h.decompose()
    for a in soup.find_all("a"):
        if names_a_question(a, questions):
            a.decompose()
    # The file declares ISO-8859-1: written back as ASCII with character references, so
    # what BeautifulSoup decoded from entities (&ndash;) reads the same in every reader.
    strict.write_bytes(str(soup).encode("ascii", "xmlcharrefreplace"))


def html_plain_text(path: Path) -> str:
    return BeautifulSoup(path.read_bytes(), "lxml").get_text(" ")


# --------------------------------------------------------------------------
# Markdown document (cryptsetup FAQ)
# --------------------------------------------------------------------------

CRYPTSETUP_Q = re.compile(r"^\s*\* \*\*(\d+\.\d+)\s+(.*?)\*\*\s*(.*?)\s*$")
MD_SECTION = re.compile(r"^#")


def md_to_text(md: str) -> str:
    """Markdown -> plain text: links keep their text, emphasis/escapes go."""
    md = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md)
    md = re.sub(r"\*\*|__|`", "", md)
    md = re.sub(r"\\([\\`*_{}\[\]()#+\-.!<>])", r"\1", md)
    return squash(md)


def parse_cryptsetup(path: Path) -> list[QA]:
    """Questions are bullet items '  * **2.4 What is ...?**' (a few have the
    '?' after the bold, kept); answers run to the next question or '#'
    section heading. The unnumbered bold items of section 11 (references)
    are not questions."""
    qas: list[QA] = []
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines() + ["#"]:
        m = CRYPTSETUP_Q.match(line)
        if m or MD_SECTION.match(line):
            if qas and not qas[-1].answer:
                qas[-1].answer = md_to_text("\n".join(body))
            body = []
        if m:
            qas.append(QA(md_to_text(m.group(2) + m.group(3)), ""))
        elif qas:
            body.append(line)
    return qas


def drop_mentions(text: str, qas: list[QA]) -> str:
    """Remove in-text references quoting a question ('See Item "How do I
    recover ..."'), also when wrapped over lines. Only questions of 4+ words:
    shorter ones ('WARNINGS', 'bash?') are ordinary words of the text."""
    for qa in qas:
        words_ = qa.question.split()
        if len(words_) >= 4:
            text = re.sub(r"\s+".join(map(re.escape, words_)), "", text, flags=re.IGNORECASE)
    return text


def strip_cryptsetup(base: Path, strict: Path, qas: list[QA]) -> None:
    """Drop the question heading lines (the TOC lists only sections) and
    in-text references quoting a question."""
    lines = base.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = "".join(l for l in lines if not CRYPTSETUP_Q.match(l))
    strict.write_text(drop_mentions(kept, qas), encoding="utf-8")


# --------------------------------------------------------------------------
# Plain-text document (zsh FAQ)
# --------------------------------------------------------------------------

ZSH_Q = re.compile(r"^(\d+)\.(\d+): (.*)$")        # body heading '3.2: In which ...'
ZSH_TOC = re.compile(r"^(\d+)\.(\d+)\. (.*)$")     # contents entry '3.2. In which ...'
ZSH_CHAPTER = re.compile(r"^Chapter \d+: ")
ZSH_END = "Acknowledgments:"                        # after the last question


def parse_zsh(path: Path) -> list[QA]:
    """Body headings 'N.M: Question' (the contents list repeats them as
    'N.M. Question', sometimes with a parenthetical the heading lacks);
    answers run to the next heading, chapter line or the acknowledgments."""
    qas: list[QA] = []
    body: list[str] = []

    def close() -> None:
        if qas and not qas[-1].answer:
            qas[-1].answer = squash("\n".join(body))

    for line in path.read_text(encoding="utf-8").splitlines():
        m = ZSH_Q.match(line)
        if m or ZSH_CHAPTER.match(line) or line.startswith(ZSH_END):
            close()
            body = []
            if m:
                qas.append(QA(m.group(3).strip(), ""))
            elif line.startswith(ZSH_END):
                break
        elif qas:
            body.append(line)
    close()
    return qas


def strip_zsh(base: Path, strict: Path, qas: list[QA]) -> None:
    """Drop the heading lines, the contents entries and in-text references
    quoting a question."""
    lines = base.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = "".join(l for l in lines if not (ZSH_Q.match(l) or ZSH_TOC.match(l)))
    strict.write_text(drop_mentions(kept, qas), encoding="utf-8")


def text_plain_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# The documents
# --------------------------------------------------------------------------

DOCS = [
    Doc("R-FAQ.pdf", "r-doc-pdf", "4.2.2.20221110-2", "usr/share/R/doc/manual/R-FAQ.pdf",
        "GPL-2+ (the document says: GNU GPL version 2 or later)", parse_rfaq, strip_pdf),
    Doc("simh-FAQ.pdf", "simh", "3.8.1-6.1", "usr/share/doc/simh/simh_faq.pdf",
        "MIT/X11-style (SIMH licence, printed on the document's first page)",
        parse_simh, strip_pdf),
    Doc("django-faq-general.html", "python-django-doc", "3:3.2.25-0+deb12u7",
        "usr/share/doc/python-django-doc/html/faq/general.html",
        "BSD-3-clause (Django)", parse_django, strip_django),
    Doc("django-faq-admin.html", "python-django-doc", "3:3.2.25-0+deb12u7",
        "usr/share/doc/python-django-doc/html/faq/admin.html",
        "BSD-3-clause (Django)", parse_django, strip_django),
    Doc("fetchmail-FAQ.html", "fetchmail", "6.4.37-1", "usr/share/doc/fetchmail/fetchmail-FAQ.html",
        "GPL-2+ with OpenSSL exception (fetchmail's Files: *; the FAQ ships as its documentation)",
        parse_fetchmail, strip_fetchmail),
    Doc("cryptsetup-FAQ.md", "cryptsetup", "2:2.6.1-4~deb12u2", "usr/share/doc/cryptsetup/FAQ.md.gz",
        "CC-BY-SA-3.0 (stated in the FAQ, question 1.5); cryptsetup itself: GPL-2+",
        parse_cryptsetup, strip_cryptsetup),
    Doc("zsh-FAQ.txt", "zsh-common", "5.9-4", "usr/share/doc/zsh-common/FAQ.gz",
        "permissive: use, copy, modify, distribute with the copyright notice (P.W. Stephenson; see the document's end)",
        parse_zsh, strip_zsh),
]

PLAIN_TEXT = {".pdf": pdf_plain_text, ".html": html_plain_text, ".md": text_plain_text,
              ".txt": text_plain_text}


# --------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------

def fetch_deb(pkg: str, version: str, debs: Path) -> Path:
    """apt-get download the pinned version into `debs` (cached); fall back to
    the candidate version when the pinned one is no longer in the archive."""
    debs.mkdir(parents=True, exist_ok=True)
    cached = sorted(debs.glob(f"{pkg}_*.deb"))
    if cached:
        return cached[-1]
    for spec in (f"{pkg}={version}", pkg):
        r = subprocess.run(["apt-get", "download", spec], cwd=debs,
                           capture_output=True, text=True)
        if r.returncode == 0:
            break
        print(f"  apt-get download {spec} failed: {r.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
    else:
        raise SystemExit(f"cannot download {pkg}; run apt-get update first")
    return sorted(debs.glob(f"{pkg}_*.deb"))[-1]


def deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"],
                          capture_output=True, text=True, check=True).stdout.strip()


def extract(deb: Path, member: str, dest: Path) -> None:
    """dpkg-deb -x into a temp dir, copy one file out (gunzipped if .gz)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        src = Path(tmp, member)
        if member.endswith(".gz"):
            with gzip.open(src, "rb") as f:
                dest.write_bytes(f.read())
        else:
            shutil.copyfile(src, dest)


def copy_copyright(deb: Path, pkg: str, dest_dir: Path) -> Path:
    dest = dest_dir / f"{pkg}.copyright"
    if not dest.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            shutil.copyfile(Path(tmp, "usr/share/doc", pkg, "copyright"), dest)
    return dest


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def clean_question(q: str) -> str:
    """Strip leftover numbering decorations ('2.1 ', '3.2: ') and spaces."""
    return squash(re.sub(r"^\d+(\.\d+)*[.:]?\s+", "", q))


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    work = Path(sys.argv[1]).resolve()
    base_dir, strict_dir = work / "corpus" / "base", work / "corpus" / "strict"
    lic_dir = work / "corpus" / "licenses"
    for d in (base_dir, strict_dir, lic_dir):
        d.mkdir(parents=True, exist_ok=True)

    total = 0
    with open(work / "qa.jsonl", "w", encoding="utf-8") as out:
        for doc in DOCS:
            deb = fetch_deb(doc.package, doc.version, work / "debs")
            doc.used_version = deb_version(deb)
            base = base_dir / doc.name
            if not base.exists():
                extract(deb, doc.member, base)
            copy_copyright(deb, doc.package, lic_dir)

            qas = doc.parse(base)
            for qa in qas:
                qa.question = clean_question(qa.question)
            strict = strict_dir / doc.name
            doc.strip(base, strict, qas)

            # Verify the strict variant: a question counts as removed when its
            # word sequence no longer occurs anywhere in the strict document.
            # Short titles that are also ordinary words of the text (e.g.
            # 'bash?', 'Models') may legitimately remain in answers.
            strict_text = words(PLAIN_TEXT[base.suffix](strict))
            removed = sum(1 for qa in qas if words(qa.question) not in strict_text)
            empty = sum(1 for qa in qas if not norm(qa.answer))
            print(f"{doc.name:28s} {doc.package} {doc.used_version}: {len(qas)} questions, "
                  f"strict: {removed}/{len(qas)} question texts gone from the document"
                  + (f", {empty} with empty answer" if empty else ""))
            for qa in qas:
                if words(qa.question) in strict_text:
                    print(f"    still present (as ordinary text): {qa.question!r}")
            for n, qa in enumerate(qas, start=1):
                out.write(json.dumps({"qid": f"{doc.name}#{n}", "doc": doc.name,
                                      "question": qa.question, "answer": qa.answer},
                                     ensure_ascii=False) + "\n")
            total += len(qas)
    write_licenses(work / "corpus" / "LICENSES.md")
    print(f"total: {total} questions in {len(DOCS)} documents -> {work / 'qa.jsonl'}")


def write_licenses(path: Path) -> None:
    lines = ["# Benchmark documents: provenance and licences", "",
             "All documents are taken unmodified (corpus/base; gunzipped where the package ships them "
             "compressed) from Debian bookworm binary "
             "packages; corpus/strict holds copies with the question headings removed. "
             "Each package's full copyright file is in licenses/<package>.copyright.", "",
             "| document | package | version | path in package | licence |",
             "| --- | --- | --- | --- | --- |"]
    for d in DOCS:
        lines.append(f"| {d.name} | {d.package} | {d.used_version} | /{d.member} | {d.licence} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
