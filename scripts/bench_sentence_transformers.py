#!/usr/bin/env python3
"""sentence-transformers' throughput on the texts examples/embed_local wrote, for the ratio.

    EMBED_LOCAL_TEXTS_OUT=/tmp/texts.jsonl cargo run --release --example embed_local -- 128 16 "" 200
    python3 scripts/bench_sentence_transformers.py /tmp/texts.jsonl [BATCH=16] [MODEL_DIR]

Needs `pip install sentence-transformers` (torch from PyPI). Threads: torch's default (one
per core). Prints chunks/s and tokens/s the way embed_local does (tokens with [CLS]/[SEP],
after truncation at 256, no padding).
"""

import json
import os
import sys
import time
from pathlib import Path

from sentence_transformers import SentenceTransformer
import torch

texts = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line]
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 16
model_dir = (
    sys.argv[3]
    if len(sys.argv) > 3
    else os.environ.get(
        "RAGWORKER_MODEL_DIR",
        os.path.expanduser("~/.cache/ragworker/models/all-MiniLM-L6-v2"),
    )
)
model = SentenceTransformer(model_dir, device="cpu")
tokens = int(model.tokenize(texts)["attention_mask"].sum())
model.encode(texts[:8], batch_size=batch)  # warm-up, as embed_local does
started = time.perf_counter()
model.encode(texts, batch_size=batch)
seconds = time.perf_counter() - started
print(
    f"sentence-transformers (torch {torch.__version__}, {torch.get_num_threads()} threads) "
    f"batch {batch:>3}: {len(texts) / seconds:>7.1f} chunks/s {tokens / seconds:>9.0f} tokens/s "
    f"({seconds:.2f}s, {tokens / len(texts):.1f} tokens each)"
)
