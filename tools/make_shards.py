#!/usr/bin/env python3
"""Writes webdataset tar shards for `train --data shards:PATTERN`: per sample key.<image ext>, key.txt and
key.emb.safetensors (F32 `tokens` [L, D] and `mask` [L]), plus empty.emb.safetensors (the empty caption's encoding).

This is the one data step outside .NET: the text encoder is whatever the user has.
  --encoder t5:google/flan-t5-xl   Hugging Face transformers + PyTorch (ml-mdm's choice; needs those packages)
  --encoder stand-in               a deterministic hash embedding, no dependencies (tests, tiny examples, plumbing)

Input: a TSV of `image path<TAB>caption` lines (paths relative to the TSV). Image bytes are copied, not re-encoded.
Example:  python3 tools/make_shards.py captions.tsv out/shards --encoder stand-in --tokens 16 --dim 32 --shard-size 1000
"""
import argparse
import hashlib
import io
import json
import os
import struct
import sys
import tarfile

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def safetensors_bytes(tensors):
    """tensors: name -> (shape, flat list of floats); F32, little-endian, header padded to 8 bytes."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        shape, values = tensors[name]
        blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


class StandInEncoder:
    """Each whitespace token (and an end token) -> a unit-range vector from its SHA-256; deterministic, not semantic."""

    def __init__(self, tokens, dim):
        self.tokens, self.dim = tokens, dim

    def vector(self, word):
        out, counter = [], 0
        while len(out) < self.dim:
            digest = hashlib.sha256(f"{word}\0{counter}".encode("utf-8")).digest()
            out.extend(b / 127.5 - 1.0 for b in digest)
            counter += 1
        return out[: self.dim]

    def encode(self, caption):
        words = (caption.split() + ["</s>"])[: self.tokens]
        flat, mask = [], []
        for i in range(self.tokens):
            flat.extend(self.vector(words[i]) if i < len(words) else [0.0] * self.dim)
            mask.append(1.0 if i < len(words) else 0.0)
        return flat, mask


class T5Encoder:
    """ml-mdm's text encoder family: the last hidden state of a T5 encoder, padded to `tokens`."""

    def __init__(self, model, tokens):
        try:
            import torch  # noqa: F401
            from transformers import AutoTokenizer, T5EncoderModel
        except ImportError as e:
            sys.exit(f"make_shards: --encoder t5:{model} needs PyTorch and transformers ({e}); or use --encoder stand-in")
        import torch
        self.torch, self.tokens = torch, tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = T5EncoderModel.from_pretrained(model).eval()
        self.dim = self.model.config.d_model

    def encode(self, caption):
        batch = self.tokenizer([caption], padding="max_length", truncation=True, max_length=self.tokens, return_tensors="pt")
        with self.torch.no_grad():
            hidden = self.model(**batch).last_hidden_state[0]
        mask = batch["attention_mask"][0].float()
        return (hidden * mask[:, None]).flatten().tolist(), mask.tolist()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tsv", help="lines of: image path<TAB>caption")
    p.add_argument("out", help="output folder for shard-NNNNNN.tar and empty.emb.safetensors")
    p.add_argument("--encoder", default="stand-in", help="stand-in | t5:<model name or path>")
    p.add_argument("--tokens", type=int, default=128, help="tokens per caption (padded / truncated), L")
    p.add_argument("--dim", type=int, default=64, help="stand-in only: embedding width D (a T5 model sets its own)")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard")
    a = p.parse_args()
    if a.tokens < 1 or a.dim < 1 or a.shard_size < 1:
        sys.exit("make_shards: --tokens, --dim and --shard-size must be positive")
    encoder = StandInEncoder(a.tokens, a.dim) if a.encoder == "stand-in" else \
        T5Encoder(a.encoder[3:], a.tokens) if a.encoder.startswith("t5:") else \
        sys.exit(f"make_shards: unknown --encoder '{a.encoder}' (stand-in | t5:<model>)")

    base = os.path.dirname(os.path.abspath(a.tsv))
    with open(a.tsv, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]
    for number, row in enumerate(rows, 1):
        if len(row) != 2 or not row[0].lower().endswith(IMAGE_EXTENSIONS):
            sys.exit(f"make_shards: {a.tsv} line {number}: expected 'image{'|'.join(IMAGE_EXTENSIONS)}<TAB>caption'")
    os.makedirs(a.out, exist_ok=True)

    def embedding(caption):
        flat, mask = encoder.encode(caption)
        return safetensors_bytes({"tokens": ((len(mask), len(flat) // len(mask)), flat), "mask": ((len(mask),), mask)})

    with open(os.path.join(a.out, "empty.emb.safetensors"), "wb") as f:
        f.write(embedding(""))
    shards = 0
    for start in range(0, len(rows), a.shard_size):
        path = os.path.join(a.out, f"shard-{shards:06d}.tar")
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for index, (image, caption) in enumerate(rows[start:start + a.shard_size], start):
                source = os.path.join(base, image)
                try:
                    with open(source, "rb") as f:
                        data = f.read()
                except OSError as e:
                    sys.exit(f"make_shards: {a.tsv}: cannot read {source}: {e.strerror}")
                key = f"{index:09d}"
                add(tar, key + os.path.splitext(image)[1].lower(), data)
                add(tar, key + ".txt", caption.encode("utf-8"))
                add(tar, key + ".emb.safetensors", embedding(caption))
        shards += 1
    print(f"make_shards: {len(rows)} samples in {shards} shard(s) under {a.out} "
          f"(pattern shards:{os.path.join(a.out, 'shard-{000000..%06d}.tar' % (shards - 1))})")


if __name__ == "__main__":
    main()
