#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Golden GPTQ packing cases, written from docs/export-gptq.md, "Packing in detail" (shares no code with the engine).

    /usr/bin/python3 tests/reference/reference_gptq_pack.py OUT.safetensors

For every case i (parameters in __metadata__["c<i>"] as "bits=B,K=K,N=N,G=G,sym=0|1,act=0|1")
the file holds the quantizer's integer grid in the layout moewb's sink gives it
    c<i>.q       I32 [N, K]   codes in [0, 2^B - 1], original column order
    c<i>.zeros   F32 [N, ngroups]  integer-valued zero points (sym: 2^(B-1))
    c<i>.scales  F32 [N, ngroups]  fp16-representable
    c<i>.g_idx   I32 [K]
and the checkpoint tensors computed here:
    c<i>.qweight    I32 [ceil(K*B/32), N]
    c<i>.qzeros_v1  I32 [ngroups, ceil(N*B/32)]   stored zero - 1 (mod 2^B), checkpoint_format "gptq"
    c<i>.qzeros_v2  I32 [ngroups, ceil(N*B/32)]   stored zero, "gptq_v2"
    c<i>.scales16   F16 [ngroups, N]
    c<i>.deq        F32 [N, K]   float32(fp16 scale) * (q - zero), one float32 rounding
Packing: B in {2,4,8}: P = 32/B values per word, value j of a word at bits [B*j, B*j+B) (section 3.5).
B = 3: 32 values in 3 words laid out exactly as section 3.6 describes word by word (w0, w1, w2).
Lengths that are not a multiple of P (32 for B = 3) are padded with zero values and the packed
rows/columns beyond ceil(len*B/32) words (all zero) are dropped.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np as st  # noqa: E402

# (bits, K, N, G, sym, act_order)
CASES = [
    (4, 64, 48, 32, True, False),
    (4, 40, 33, 16, False, False),   # K, N not multiples of 8 (padding), odd N
    (2, 64, 32, 16, False, False),
    (2, 50, 31, -1, True, False),
    (8, 48, 20, 16, False, True),    # act order: permuted g_idx
    (8, 36, 5, 32, True, False),
    (3, 64, 64, 32, True, False),
    (3, 96, 32, 16, False, True),
    (3, 40, 40, 16, False, False),   # K, N not multiples of 32
    (3, 32, 7, -1, False, False),
]


def pack_words_248(vals, bits):
    """vals: uint32 [L, M] along axis 0 -> words [ceil(L*bits/32), M] (section 3.5)."""
    per = 32 // bits
    L, M = vals.shape
    rows = -(-L // per)
    padded = np.zeros((rows * per, M), dtype=np.uint32)
    padded[:L] = vals
    out = np.zeros((rows, M), dtype=np.uint32)
    for r in range(rows):
        for j in range(per):
            out[r] |= padded[r * per + j] << np.uint32(bits * j)
    return out[:-(-(L * bits) // 32)]


def pack_words_3(vals):
    """vals: uint32 [L, M] (each < 8) along axis 0 -> words [ceil(L*3/32), M] (section 3.6)."""
    L, M = vals.shape
    triples = -(-L // 32)
    v = np.zeros((triples * 32, M), dtype=np.uint32)
    v[:L] = vals
    out = np.zeros((triples * 3, M), dtype=np.uint32)
    for t in range(triples):
        b = v[32 * t:32 * t + 32]
        w0 = np.zeros(M, dtype=np.uint32)
        w1 = np.zeros(M, dtype=np.uint32)
        w2 = np.zeros(M, dtype=np.uint32)
        # w0: values 0..9 at bits 3j; value 10 bits[0:2] at bits 30..31
        for j in range(10):
            w0 |= b[j] << np.uint32(3 * j)
        w0 |= (b[10] & np.uint32(3)) << np.uint32(30)
        # w1: value 10 bit 2 at bit 0; values 11..20 at bits 3(j-11)+1; value 21 bit 0 at bit 31
        w1 |= (b[10] >> np.uint32(2)) & np.uint32(1)
        for j in range(11, 21):
            w1 |= b[j] << np.uint32(3 * (j - 11) + 1)
        w1 |= (b[21] & np.uint32(1)) << np.uint32(31)
        # w2: value 21 bits[1:3] at bits 0..1; values 22..31 at bits 3(j-22)+2
        w2 |= (b[21] >> np.uint32(1)) & np.uint32(3)
        for j in range(22, 32):
            w2 |= b[j] << np.uint32(3 * (j - 22) + 2)
        out[3 * t], out[3 * t + 1], out[3 * t + 2] = w0, w1, w2
    keep = -(-(L * 3) // 32)
    assert not out[keep:].any()
    return out[:keep]


def pack_axis0(vals, bits):
    vals = np.asarray(vals, dtype=np.uint32)
    return pack_words_3(vals) if bits == 3 else pack_words_248(vals, bits)


def make_case(rng, bits, K, N, G, sym, act):
    maxq = 2 ** bits - 1
    g = K if G == -1 else G
    ngroups = -(-K // g)
    q = rng.integers(0, maxq + 1, size=(N, K), dtype=np.int64).astype(np.int32)
    if sym:
        zeros = np.full((N, ngroups), 2 ** (bits - 1), dtype=np.float32)
    else:
        zeros = rng.integers(0, maxq + 1, size=(N, ngroups)).astype(np.float32)
        zeros[0, 0] = 0.0  # the v1 wrap-around case (zero 0 stored as 2^B - 1)
        zeros[-1, -1] = float(maxq)
    scales = (rng.uniform(1e-3, 0.2, size=(N, ngroups))).astype(np.float16).astype(np.float32)
    if act:
        perm = rng.permutation(K)
        invperm = np.argsort(perm)
        g_idx = (invperm // g).astype(np.int32)
    else:
        g_idx = (np.arange(K) // g).astype(np.int32)
    qweight = pack_axis0(q.T, bits)                         # q indexed [in, out]
    zst_v1 = (zeros.astype(np.int64) - 1) % (maxq + 1)      # zero - 1, wrapped into B bits
    qzeros_v1 = pack_axis0(zst_v1.astype(np.uint32), bits).T  # pack along N: [ngroups, words]
    qzeros_v2 = pack_axis0(zeros.astype(np.uint32), bits).T
    scales16 = scales.T.astype(np.float16)
    s = scales16.astype(np.float32).T[:, g_idx]             # [N, K]
    z = zeros[:, g_idx]
    deq = (s * (q.astype(np.float32) - z)).astype(np.float32)
    return {
        "q": q, "zeros": zeros, "scales": scales, "g_idx": g_idx,
        "qweight": qweight.view(np.int32), "qzeros_v1": np.ascontiguousarray(qzeros_v1).view(np.int32),
        "qzeros_v2": np.ascontiguousarray(qzeros_v2).view(np.int32), "scales16": np.ascontiguousarray(scales16),
        "deq": deq,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rng = np.random.Generator(np.random.PCG64(20261130))
    tensors, meta = {}, {"format": "pt"}
    for i, (bits, K, N, G, sym, act) in enumerate(CASES):
        for k, v in make_case(rng, bits, K, N, G, sym, act).items():
            tensors[f"c{i}.{k}"] = np.ascontiguousarray(v)
        meta[f"c{i}"] = f"bits={bits},K={K},N={N},G={G},sym={int(sym)},act={int(act)}"
    st.save(sys.argv[1], tensors, metadata=meta)


if __name__ == "__main__":
    main()
