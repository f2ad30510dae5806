#!/usr/bin/env python3
"""Independent NumPy oracle for the GGUF/ggml block formats, written from the format description.

Used by tests/test_quant.cpp, which writes random blocks / floats to scratch files and compares its C++ results
with what this script computes. All arithmetic that must be bit-exact is done in float32 with one rounding per
operation, in the order ggml uses (e.g. Q4_K: (d*scale)*q - dmin*min).

  quant_oracle.py decode   TYPE IN OUT     blocks of TYPE -> little-endian float32
  quant_oracle.py quantize KIND IN OUT     float32 -> blocks; KIND is one of QUANTIZERS below
  quant_oracle.py tensors  GGUF OUTDIR     every tensor's raw bytes to OUTDIR/<name>.bin, plus OUTDIR/index.txt
                                           with one line "name type_id ne0 ne1 ..." per tensor
  quant_oracle.py regenerate GGUF SEED OUTDIR
                                           the f32 originals of a random test model (see regenerate()) for every
                                           tensor of GGUF, as OUTDIR/<name>.bin
"""
import os
import struct
import sys

import numpy as np

F32 = np.float32

# type name -> (ggml type id, elements per block, bytes per block)
TYPES = {
    "f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18), "q4_1": (3, 32, 20), "q5_0": (6, 32, 22),
    "q5_1": (7, 32, 24), "q8_0": (8, 32, 34), "q8_1": (9, 32, 36), "q2_K": (10, 256, 84), "q3_K": (11, 256, 110),
    "q4_K": (12, 256, 144), "q5_K": (13, 256, 176), "q6_K": (14, 256, 210), "q8_K": (15, 256, 292),
    "bf16": (30, 1, 2), "mxfp4": (39, 32, 17),
}
TYPE_BY_ID = {v[0]: (k, v[1], v[2]) for k, v in TYPES.items()}


def f16(raw):
    """uint8 array (..., 2) -> float32 values of the little-endian halves."""
    return np.ascontiguousarray(raw).view("<f2").astype(F32)[..., 0]


def u32le(raw):
    return np.ascontiguousarray(raw).view("<u4")[..., 0]


def blocks(data, type_name):
    _, _, size = TYPES[type_name]
    b = np.frombuffer(data, dtype=np.uint8)
    assert b.size % size == 0, "data is not a whole number of blocks"
    return b.reshape(-1, size)


def nibbles(qs):
    """(nb, 16) bytes -> (nb, 32) values: low nibbles are elements 0..15, high nibbles 16..31."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)


def fifth_bits(qh_raw):
    """(nb, 4) bytes of a 32-bit little-endian mask -> (nb, 32) bits, element j is bit j."""
    qh = u32le(qh_raw)
    return ((qh[:, None] >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)


# ---------------------------------------------------------------- decoders (32-wide formats)

def decode_q4_0(b):
    d = f16(b[:, 0:2])[:, None]
    return (nibbles(b[:, 2:18]) - 8).astype(F32) * d


def decode_q4_1(b):
    d, m = f16(b[:, 0:2])[:, None], f16(b[:, 2:4])[:, None]
    return nibbles(b[:, 4:20]).astype(F32) * d + m


def decode_q5_0(b):
    d = f16(b[:, 0:2])[:, None]
    q = nibbles(b[:, 6:22]) | (fifth_bits(b[:, 2:6]) << 4)
    return (q - 16).astype(F32) * d


def decode_q5_1(b):
    d, m = f16(b[:, 0:2])[:, None], f16(b[:, 2:4])[:, None]
    q = nibbles(b[:, 8:24]) | (fifth_bits(b[:, 4:8]) << 4)
    return q.astype(F32) * d + m


def decode_q8_0(b):
    return b[:, 2:34].view(np.int8).astype(F32) * f16(b[:, 0:2])[:, None]


def decode_q8_1(b):
    return b[:, 4:36].view(np.int8).astype(F32) * f16(b[:, 0:2])[:, None]


# ---------------------------------------------------------------- decoders (K formats)

def crumbs(qs):
    """Q2_K/Q3_K 2-bit quants: (nb, 64) bytes -> (nb, 256). Each half of 128 elements uses 32 bytes; its four
    runs of 32 elements are bit pairs 0-1, 2-3, 4-5, 6-7 of those bytes."""
    nb = qs.shape[0]
    q = qs.reshape(nb, 2, 1, 32)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    return ((q >> shifts) & 3).reshape(nb, 256).astype(np.int32)


def per_sub(v, width):
    """(nb, nsub) per-sub-block values -> (nb, 256) per element."""
    return np.repeat(v, width, axis=1)


def decode_q2_K(b):
    sc, qs = b[:, 0:16], b[:, 16:80]
    d, dmin = f16(b[:, 80:82])[:, None], f16(b[:, 82:84])[:, None]
    dl = d * (sc & 0xF).astype(F32)
    ml = dmin * (sc >> 4).astype(F32)
    return per_sub(dl, 16) * crumbs(qs).astype(F32) - per_sub(ml, 16)


def q3_scales(s):
    """12 bytes -> 16 six-bit scales (minus 32). Bytes 0-7: low nibbles of scales 0-7 and (high nibbles) 8-15;
    bytes 8-11: the top two bits, scale j in byte 8 + j%4 at bit 2*(j//4)."""
    s = s.astype(np.int32)
    low = np.concatenate([s[:, 0:8] & 0xF, s[:, 0:8] >> 4], axis=1)
    j = np.arange(16)
    high = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 3
    return (low | (high << 4)) - 32


def decode_q3_K(b):
    hmask, qs, sc = b[:, 0:32], b[:, 32:96], b[:, 96:108]
    d = f16(b[:, 108:110])[:, None]
    # High bit of element k: bit k//32 of hmask[k%32]; clear means subtract 4.
    k = np.arange(256)
    hbit = (hmask[:, k % 32] >> (k // 32).astype(np.uint8)) & 1
    q = crumbs(qs) - np.where(hbit == 1, 0, 4)
    dl = d * q3_scales(sc).astype(F32)
    return per_sub(dl, 16) * q.astype(F32)


def k4_scales_mins(s):
    """Q4_K/Q5_K 12 bytes -> 8 scales and 8 mins, 6 bits each."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), dtype=np.int32)
    mn = np.empty_like(sc)
    sc[:, 0:4] = s[:, 0:4] & 63
    mn[:, 0:4] = s[:, 4:8] & 63
    sc[:, 4:8] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:8] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def k4_nibbles(qs):
    """(nb, 128) -> (nb, 256): each group of 64 elements is the low then the high nibbles of 32 bytes."""
    nb = qs.shape[0]
    q = qs.reshape(nb, 4, 32)
    return np.stack([q & 0xF, q >> 4], axis=2).reshape(nb, 256).astype(np.int32)


def decode_k4(q, d, dmin, sc, mn):
    dl = d * sc.astype(F32)
    ml = dmin * mn.astype(F32)
    return per_sub(dl, 32) * q.astype(F32) - per_sub(ml, 32)


def decode_q4_K(b):
    d, dmin = f16(b[:, 0:2])[:, None], f16(b[:, 2:4])[:, None]
    sc, mn = k4_scales_mins(b[:, 4:16])
    return decode_k4(k4_nibbles(b[:, 16:144]), d, dmin, sc, mn)


def decode_q5_K(b):
    d, dmin = f16(b[:, 0:2])[:, None], f16(b[:, 2:4])[:, None]
    sc, mn = k4_scales_mins(b[:, 4:16])
    qh = b[:, 16:48]
    k = np.arange(256)
    hbit = ((qh[:, k % 32] >> (k // 32).astype(np.uint8)) & 1).astype(np.int32)
    return decode_k4(k4_nibbles(b[:, 48:176]) + 16 * hbit, d, dmin, sc, mn)


def decode_q6_K(b):
    ql, qh = b[:, 0:128], b[:, 128:192]
    sc = b[:, 192:208].view(np.int8).astype(np.int32)
    d = f16(b[:, 208:210])[:, None]
    nb = b.shape[0]
    # Per half of 128 elements: 64 ql bytes and 32 qh bytes. Runs t = 0..3 of 32 elements take the low nibbles
    # of ql[0:32], ql[32:64], then the high nibbles of the same, and bits 2t..2t+1 of qh.
    ql = ql.reshape(nb, 2, 2, 32)
    low = np.concatenate([ql & 0xF, ql >> 4], axis=2)  # (nb, 2, 4, 32) in run order t
    qh = qh.reshape(nb, 2, 1, 32)
    high = (qh >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 3
    q = ((low | (high << 4)).astype(np.int32) - 32).reshape(nb, 256)
    dl = d * sc.astype(F32)
    return per_sub(dl, 16) * q.astype(F32)


def decode_q8_K(b):
    d = np.ascontiguousarray(b[:, 0:4]).view("<f4")
    return d * b[:, 4:260].view(np.int8).astype(F32)


# ---------------------------------------------------------------- MXFP4 (OCP microscaling FP4)

# E2M1 code -> value: bit 3 sign, bits 1-2 exponent (bias 1), bit 0 mantissa; exponent 0 is subnormal (0, 0.5).
E2M1 = np.array([(-1.0 if c & 8 else 1.0) * ((c & 1) * 0.5 if (c >> 1) & 3 == 0 else
                                              (1.0 + (c & 1) * 0.5) * 2.0 ** (((c >> 1) & 3) - 1))
                 for c in range(16)], dtype=np.float64) + 0.0  # + 0.0: code 8 (-0) decodes to +0, as in ggml


def e8m0(e):
    """E8M0 bytes -> 2^(e-127) as float64 (exact; e = 255 would be NaN and is not produced here)."""
    return np.ldexp(1.0, e.astype(np.int32) - 127)


def mxfp4_codes(qs):
    """(nb, 16) bytes -> (nb, 32) codes: element j is the low nibble of byte j, element j+16 the high one."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def decode_mxfp4(b):
    # value * scale is exact in float64; one rounding to float32 (which is exact too unless it underflows).
    return (E2M1[mxfp4_codes(b[:, 1:17])] * e8m0(b[:, 0])[:, None]).astype(F32)


def quantize_mxfp4(x):
    """llama-quantize's MXFP4: e = floor(log2f(amax)) + 125 (amax then lies in [4, 8) * 2^(e-127)), each weight to
    the nearest of the 16 code values, error |value - x| measured in float32, ties to the lower code."""
    x = x.reshape(-1, 32)
    amax = np.max(np.abs(x), axis=1)
    with np.errstate(divide="ignore"):
        # log2f correctly rounded to float32: the float64 log2 rounded once.
        lg = np.floor(np.log2(amax.astype(np.float64)).astype(F32))
    e = np.where(amax > 0, np.clip(lg + 125, 0, 254), 0).astype(np.uint8)
    scale = e8m0(e).astype(F32)[:, None, None]  # 2^(e-127), exact in float32 for e >= 1
    values = (E2M1.astype(F32)[None, None, :] * scale).astype(F32)  # (nb, 1, 16)
    err = np.abs(values - x[:, :, None]).astype(F32)
    codes = np.argmin(err, axis=2).astype(np.uint8)  # first minimum: the lower code wins ties
    packed = (codes[:, :16] | (codes[:, 16:] << 4)).astype(np.uint8)
    return np.concatenate([e[:, None], packed], axis=1)


def decode(type_name, data):
    if type_name == "f32":
        return np.frombuffer(data, dtype="<f4").astype(F32)
    if type_name == "f16":
        return np.frombuffer(data, dtype="<f2").astype(F32)
    if type_name == "bf16":
        return (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(F32)
    b = blocks(data, type_name)
    return globals()["decode_" + type_name](b).reshape(-1)


# ---------------------------------------------------------------- quantizers

def round_half_even(v):
    return np.round(v)  # NumPy rounds half to even, like _mm256_round_ps(_MM_ROUND_NEAREST)


def round_half_away(v):
    # C roundf. floor(|v| + 0.5) in float64 is exact for float32 inputs (float32 would round 0.49999997 + 0.5 up).
    return np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)


def half_bytes(v):
    return v.astype(np.float16).view(np.uint8).reshape(-1, 2)


def signed_extreme(x):
    """Per row: the element with the largest magnitude (first one on ties), with its sign."""
    return x[np.arange(x.shape[0]), np.argmax(np.abs(x), axis=1)]


def safe_div(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, F32(1)), F32(0)).astype(F32)


def q8_common(x, x86):
    """Q8_0/Q8_1 quants and scale. x86: llama.cpp's AVX path (127/amax, half to even); else ggml's scalar
    reference (1/d, half away from zero)."""
    amax = np.max(np.abs(x), axis=1)
    d = (amax / F32(127)).astype(F32)
    if x86:
        q = round_half_even(x * safe_div(F32(127), amax)[:, None])
    else:
        q = round_half_away(x * safe_div(F32(1), d)[:, None])
    return np.clip(q, -128, 127).astype(np.int8), d


def quantize_q8_0(x, x86):
    q, d = q8_common(x.reshape(-1, 32), x86)
    return np.concatenate([half_bytes(d), q.view(np.uint8)], axis=1)


def quantize_q8_1(x, x86):
    q, d = q8_common(x.reshape(-1, 32), x86)
    total = q.astype(np.int32).sum(axis=1).astype(F32)
    s = (d * total) if x86 else (total * d)
    return np.concatenate([half_bytes(d), half_bytes(s.astype(F32)), q.view(np.uint8)], axis=1)


def quantize_q8_K(x):
    x = x.reshape(-1, 256)
    mx = signed_extreme(x)
    nonzero = mx != 0
    iscale = safe_div(F32(-127), mx)
    q = np.minimum(round_half_even(x * iscale[:, None]), 127).astype(np.int8)
    q[~nonzero] = 0
    bsums = q.astype(np.int16).reshape(-1, 16, 16).sum(axis=2).astype("<i2")
    d = np.where(nonzero, safe_div(F32(1), iscale), F32(0)).astype("<f4")
    return np.concatenate([d.view(np.uint8).reshape(-1, 4), q.view(np.uint8), bsums.view(np.uint8)], axis=1)


def pack_nibbles(q):
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def pack_fifth_bits(q):
    bits = ((q >> 4) & 1).astype(np.uint32) << np.arange(32, dtype=np.uint32)
    return bits.sum(axis=1).astype("<u4").view(np.uint8).reshape(-1, 4)


def trunc_int(v):
    return np.trunc(v).astype(np.int32)  # C's float -> int conversion


def quantize_q4_0(x):
    x = x.reshape(-1, 32)
    d = (signed_extreme(x) / F32(-8)).astype(F32)
    q = np.minimum(15, trunc_int(x * safe_div(F32(1), d)[:, None] + F32(8.5)))
    return np.concatenate([half_bytes(d), pack_nibbles(q)], axis=1)


def quantize_q5_0(x):
    x = x.reshape(-1, 32)
    d = (signed_extreme(x) / F32(-16)).astype(F32)
    q = np.minimum(31, trunc_int(x * safe_div(F32(1), d)[:, None] + F32(16.5)))
    return np.concatenate([half_bytes(d), pack_fifth_bits(q), pack_nibbles(q & 0xF)], axis=1)


def min_range_quants(x, levels):
    mn, mx = x.min(axis=1), x.max(axis=1)
    d = ((mx - mn) / F32(levels)).astype(F32)
    q = trunc_int((x - mn[:, None]) * safe_div(F32(1), d)[:, None] + F32(0.5))
    return q, d, mn


def quantize_q4_1(x):
    q, d, mn = min_range_quants(x.reshape(-1, 32), 15)
    return np.concatenate([half_bytes(d), half_bytes(mn), pack_nibbles(np.minimum(15, q))], axis=1)


def quantize_q5_1(x):
    q, d, mn = min_range_quants(x.reshape(-1, 32), 31)
    return np.concatenate([half_bytes(d), half_bytes(mn), pack_fifth_bits(q), pack_nibbles(q & 0xF)], axis=1)


QUANTIZERS = {
    "q8_0_x86": lambda x: quantize_q8_0(x, True), "q8_0_ref": lambda x: quantize_q8_0(x, False),
    "q8_1_x86": lambda x: quantize_q8_1(x, True), "q8_1_ref": lambda x: quantize_q8_1(x, False),
    "q8_K": quantize_q8_K, "q4_0": quantize_q4_0, "q4_1": quantize_q4_1, "q5_0": quantize_q5_0,
    "q5_1": quantize_q5_1, "mxfp4": quantize_mxfp4,
}


# ---------------------------------------------------------------- GGUF tensor extraction

def read_gguf_tensors(path):
    """Yields (name, type_id, dims, bytes) for every tensor of a GGUF v2/v3 file."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    magic, version, n_tensors, n_kv = take("4sIQQ")
    assert magic == b"GGUF" and version in (2, 3), "not a GGUF v2/v3 file"
    meta = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, take("I"), dims, take("Q")))
    align = meta.get("general.alignment", 32)
    data_start = (pos + align - 1) // align * align
    for name, type_id, dims, offset in infos:
        _, block, size = TYPE_BY_ID[type_id]
        nbytes = int(np.prod(dims)) // block * size
        start = data_start + offset
        yield name, type_id, dims, buf[start:start + nbytes]


def dump_tensors(gguf, outdir):
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "index.txt"), "w") as index:
        for name, type_id, dims, data in read_gguf_tensors(gguf):
            with open(os.path.join(outdir, name + ".bin"), "wb") as f:
                f.write(data)
            index.write(" ".join([name, str(type_id)] + [str(d) for d in dims]) + "\n")


# Tensor order of the writer of the random reference models (testdata/reference/README.md: every tensor is
# N(0,1) from np.random.default_rng([seed, tensor_index]), times 0.1, or 1 + 0.1 N(0,1) for norms). The order
# was found by matching qwen3moe-tiny-f32.gguf, which the tests check again before relying on it.
LAYER_ORDER = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "ffn_norm",
               "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"]


def regenerate(gguf, seed, outdir):
    """Rebuilds the f32 tensors a qwen3moe reference model was quantized from (its f32 file is not shipped)."""
    os.makedirs(outdir, exist_ok=True)
    names = [(name, dims) for name, _, dims, _ in read_gguf_tensors(gguf)]
    n_layers = 1 + max(int(n.split(".")[1]) for n, _ in names if n.startswith("blk."))
    for name, dims in names:
        if name == "token_embd.weight":
            index = 0
        elif name == "output_norm.weight":
            index = 1 + len(LAYER_ORDER) * n_layers
        else:
            _, layer, kind, _ = name.split(".")
            index = 1 + len(LAYER_ORDER) * int(layer) + LAYER_ORDER.index(kind)
        z = np.random.default_rng([seed, index]).standard_normal(tuple(reversed(dims)), dtype=F32)
        x = F32(1) + F32(0.1) * z if name.endswith("norm.weight") else z * F32(0.1)
        x.astype("<f4").tofile(os.path.join(outdir, name + ".bin"))


def main(argv):
    if len(argv) == 3 and argv[0] == "tensors":
        dump_tensors(argv[1], argv[2])
    elif len(argv) == 4 and argv[0] == "regenerate":
        regenerate(argv[1], int(argv[2]), argv[3])
    elif len(argv) == 4 and argv[0] == "decode":
        with open(argv[2], "rb") as f:
            out = decode(argv[1], f.read())
        out.astype("<f4").tofile(argv[3])
    elif len(argv) == 4 and argv[0] == "quantize":
        x = np.fromfile(argv[2], dtype="<f4").astype(F32)
        QUANTIZERS[argv[1]](x).astype(np.uint8).tofile(argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    with np.errstate(over="ignore"):  # huge test scales overflow to inf on purpose, as in C
        main(sys.argv[1:])
