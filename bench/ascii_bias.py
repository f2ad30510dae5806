#!/usr/bin/python3
"""Prints an OpenAI `logit_bias` object that bans every token whose text is not plain ASCII, for a GGUF with a
byte-level BPE vocabulary (gpt2 tokenizer model). Random-weight models emit lone UTF-8 bytes, which llama-server
answers with HTTP 500 ("does not match the expected Content-only format"); with this bias both servers generate
ASCII only, so bench/serve_bench.cjs can compare them on the same file.
Usage: GGUF_PY=/work/llama.cpp/gguf-py bench/ascii_bias.py MODEL.gguf > bias.json"""
import json
import os
import sys

sys.path.insert(0, os.environ.get("GGUF_PY", "/work/llama.cpp/gguf-py"))
from gguf import GGUFReader  # noqa: E402


def byte_decoder():
    # GPT-2's printable stand-ins for the 256 byte values (a fact of the format).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    reader = GGUFReader(sys.argv[1])
    model = reader.fields["tokenizer.ggml.model"]
    if bytes(model.parts[model.data[0]]).decode() != "gpt2":
        sys.exit("only byte-level BPE (tokenizer.ggml.model = gpt2) vocabularies are handled")
    f = reader.fields["tokenizer.ggml.tokens"]
    dec = byte_decoder()
    banned = {}
    for i, idx in enumerate(f.data):
        text = bytes(f.parts[idx]).decode("utf-8", errors="replace")
        raw = [dec.get(ch, 0x80) for ch in text]
        if any(b >= 0x80 for b in raw):
            banned[str(i)] = -100
    print(json.dumps(banned))
    print(f"{len(banned)} of {len(f.data)} tokens banned", file=sys.stderr)


main()
