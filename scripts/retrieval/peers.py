#!/usr/bin/env python3
"""Chunk the benchmark corpus with the peers' default quick-start pipelines.

Usage: peers.py WORKDIR

For variant in (base, strict) and every document in WORKDIR/corpus/<variant>/,
writes WORKDIR/chunks/<system>-<variant>.jsonl, one JSON object per chunk:
  {"doc": <docfile>, "content": <text an app would show>,
   "embed": <exact text the pipeline would send to the embedding model>}

  langchain:  PyPDFLoader (.pdf), BSHTMLLoader (.html), TextLoader (.md, .txt);
              RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
              .split_documents(); content = embed = page_content.
  llamaindex: SimpleDirectoryReader(input_files=[...]).load_data() with its
              default file readers (PDFReader for .pdf; .html/.md/.txt have no
              default reader and are read as plain text), then SentenceSplitter()
              with defaults, as VectorStoreIndex.from_documents does. No index,
              LLM or embedding model is built. content = node text
              (MetadataMode.NONE), embed = MetadataMode.EMBED (LlamaIndex
              prepends the document metadata to the embedded text).

Network: none is needed. llama-index-core ships NLTK's punkt_tab/stopwords
(llama_index/core/_static/nltk_cache) and tiktoken's cl100k_base file
(_static/tiktoken_cache) and points NLTK / tiktoken at them, so the
SentenceSplitter's tokenizer and sentence splitter load offline. To prove it,
every outgoing connection is refused by a guard below; a run that needed the
network would fail loudly instead of silently degrading.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

VARIANTS = ("base", "strict")


def forbid_network() -> None:
    """Make any socket connection raise (the pipelines must run offline)."""
    def refuse(self, address, *args, **kwargs):
        raise RuntimeError(f"peers.py: network access attempted: {address!r}")
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = lambda address, *a, **k: refuse(None, address)


def langchain_chunks(files: list[Path]) -> list[dict]:
    from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    loaders = {".pdf": PyPDFLoader, ".html": BSHTMLLoader, ".md": TextLoader, ".txt": TextLoader}
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    out = []
    for f in files:
        docs = loaders[f.suffix](str(f)).load()
        for chunk in splitter.split_documents(docs):
            out.append({"doc": f.name, "content": chunk.page_content,
                        "embed": chunk.page_content})
    return out


def llamaindex_chunks(files: list[Path]) -> list[dict]:
    # Files are passed relative to WORKDIR/corpus (main() chdirs there), like
    # the quick-start's "data/..." folder: the file_path metadata that goes
    # into "embed" is then "base/R-FAQ.pdf", not a machine-specific path.
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode

    corpus = Path.cwd()
    splitter = SentenceSplitter()
    out = []
    for f in files:
        documents = SimpleDirectoryReader(input_files=[str(f.relative_to(corpus))]).load_data()
        for node in splitter.get_nodes_from_documents(documents):
            out.append({"doc": f.name,
                        "content": node.get_content(metadata_mode=MetadataMode.NONE),
                        "embed": node.get_content(metadata_mode=MetadataMode.EMBED)})
    return out


SYSTEMS = {"langchain": langchain_chunks, "llamaindex": llamaindex_chunks}


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    work = Path(sys.argv[1]).resolve()
    forbid_network()
    os.chdir(work / "corpus")
    (work / "chunks").mkdir(parents=True, exist_ok=True)
    for variant in VARIANTS:
        files = sorted((work / "corpus" / variant).iterdir())
        if not files:
            raise SystemExit(f"no documents in {work / 'corpus' / variant}: run corpus.py first")
        for system, chunker in SYSTEMS.items():
            chunks = chunker(files)
            path = work / "chunks" / f"{system}-{variant}.jsonl"
            with open(path, "w", encoding="utf-8") as out:
                for c in chunks:
                    out.write(json.dumps(c, ensure_ascii=False) + "\n")
            print(f"{system:10s} {variant:6s}: {len(chunks)} chunks -> {path}")


if __name__ == "__main__":
    main()
