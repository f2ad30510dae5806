#!/usr/bin/env python3
"""Independent PyTorch implementation of the model `moe train` trains (qwen3moe decoder with the routing
options of src/train), used by tests/test_train_torch.cpp as llm.c uses PyTorch: the C++ side writes the
initial parameters, the batches and the config; this script computes logits, the loss terms, every gradient
and the parameters after N AdamW steps with torch.autograd and torch.optim.AdamW, and writes them back.

Written from the maths in docs/training.md, not from the C++ code. The MoE block is Hugging Face style:
a loop over experts with index_select / index_add_.

usage: reference_model.py DIR       (reads DIR/config.json, params.bin, tokens.bin, targets.bin[, noise.bin])
"""
import json
import math
import os
import sys

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(T, hd, theta):
    # NEOX layout: pairs (i, i + hd/2), angle t * theta^(-2i/hd), computed in float64 then rounded.
    inv = theta ** (-2.0 * np.arange(hd // 2) / hd)
    ang = np.arange(T)[:, None] * inv[None, :]
    return torch.tensor(np.cos(ang), dtype=torch.float32), torch.tensor(np.sin(ang), dtype=torch.float32)


def apply_rope(x, cos, sin):
    # x: [B, T, H, hd]
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


def topk_lower_id(scores, k):
    # Top-k with ties broken towards the lower id (stable sort on -score).
    order = torch.sort(-scores, dim=-1, stable=True).indices
    return order[..., :k]


class Reference:
    def __init__(self, cfg, params):
        self.c = cfg
        self.p = params  # name -> leaf tensor

    def route(self, logits, layer, step, noise, train):
        """Returns (probs, selected ids [N, K] padded with -1, weights [N, K])."""
        c, r = self.c, self.c["routing"]
        E, S, k = c["n_expert"], c["n_expert"] + r["n_null"], c["n_expert_used"]
        if r["gating"] == "softmax":
            probs = torch.softmax(logits, dim=-1)
        else:
            probs = torch.sigmoid(logits)
        N = logits.shape[0]
        with torch.no_grad():
            soft = train and r["dts"] and step < r["dts_hard_step"]
            if soft:
                tau = max(r["dts_tau_min"], r["dts_tau_max"] - step / r["dts_decay_steps"] * (r["dts_tau_max"] - r["dts_tau_min"])) \
                    if r["dts_decay_steps"] > 0 else r["dts_tau_min"]
                G = torch.softmax((logits + noise) / tau, dim=-1)
                mask = G > r["dts_threshold"]
                best = torch.argmax(G, dim=-1)
                mask[torch.arange(N), best] = True
                ids = torch.full((N, S), -1, dtype=torch.long)
                for t in range(N):
                    sel = torch.nonzero(mask[t]).flatten()
                    ids[t, :len(sel)] = sel
            else:
                sel_scores = probs.detach().clone()
                bias = self.bias[layer]
                if bias is not None:
                    sel_scores[:, :E] += bias
                G_ = r["n_group"]
                if G_ > 1:
                    per, kg = E // G_, k // G_
                    parts = [topk_lower_id(sel_scores[:, g * per:(g + 1) * per], kg) + g * per for g in range(G_)]
                    ids = torch.cat(parts, dim=-1)
                else:
                    ids = topk_lower_id(sel_scores, k)
        valid = ids >= 0
        p_sel = torch.gather(probs, 1, ids.clamp(min=0)) * valid
        if r["norm_topk"]:
            w = p_sel / p_sel.sum(-1, keepdim=True).clamp(min=6.103515625e-5)
        else:
            w = p_sel
        w = w * r["weights_scale"]
        return probs, ids, w

    def moe(self, x, layer, step, noise, train, stats):
        c, r = self.c, self.c["routing"]
        b = f"blk.{layer}."
        E, S = c["n_expert"], c["n_expert"] + r["n_null"]
        N, d = x.shape
        logits = x @ self.p[b + "ffn_gate_inp.weight"].t()
        probs, ids, w = self.route(logits, layer, step, noise, train)
        out = torch.zeros_like(x)
        gate, up, down = self.p[b + "ffn_gate_exps.weight"], self.p[b + "ffn_up_exps.weight"], self.p[b + "ffn_down_exps.weight"]
        for e in range(E):  # Hugging Face style: loop over experts, gather their tokens, scatter back
            tok, slot = torch.nonzero(ids == e, as_tuple=True)
            if tok.numel() == 0:
                continue
            xe = x.index_select(0, tok)
            h = torch.nn.functional.silu(xe @ gate[e].t()) * (xe @ up[e].t())
            ye = (h @ down[e].t()) * w[tok, slot].unsqueeze(-1)
            out = out.index_add(0, tok, ye)
        if c["n_ff_shexp"] > 0:
            h = torch.nn.functional.silu(x @ self.p[b + "ffn_gate_shexp.weight"].t()) * (x @ self.p[b + "ffn_up_shexp.weight"].t())
            ys = h @ self.p[b + "ffn_down_shexp.weight"].t()
            if c["shared_gate"]:
                ys = ys * torch.sigmoid(x @ self.p[b + "ffn_gate_inp_shexp.weight"]).unsqueeze(-1)
            out = out + ys
        # Balance statistics and losses.
        load = torch.zeros(S)
        for t in range(N):
            for i in ids[t]:
                if i >= 0:
                    load[i] += 1
        stats["load"].append(load)
        stats["ids"].append(ids)
        aux = torch.zeros(())
        if r["aux_alpha"] > 0:
            q = probs if r["gating"] == "softmax" else probs / probs.sum(-1, keepdim=True)
            P = q.mean(0)
            total = load.sum()
            f = load / total
            if S > E:
                f = torch.cat([f[:E], (load[E:].sum() / total / (S - E)).repeat(S - E)])
            aux = r["aux_alpha"] * S * (f * P).sum()
        z = torch.zeros(())
        if r["z_beta"] > 0:
            z = r["z_beta"] * torch.logsumexp(logits, dim=-1).pow(2).mean()
        return out, aux, z

    def forward(self, tokens, targets, step, noise, train=True):
        c = self.c
        B, T = tokens.shape
        d, H, Hkv, hd = c["n_embd"], c["n_head"], c["n_head_kv"], c["head_dim"]
        eps = c["rms_eps"]
        cos, sin = rope_tables(T, hd, c["rope_theta"])
        x = self.p["token_embd.weight"][tokens.flatten()]  # [B*T, d]
        stats = {"load": [], "ids": []}
        aux_total, z_total = torch.zeros(()), torch.zeros(())
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        for il in range(c["n_layer"]):
            b = f"blk.{il}."
            xn = rmsnorm(x, self.p[b + "attn_norm.weight"], eps)
            q = (xn @ self.p[b + "attn_q.weight"].t()).view(B, T, H, hd)
            k = (xn @ self.p[b + "attn_k.weight"].t()).view(B, T, Hkv, hd)
            v = (xn @ self.p[b + "attn_v.weight"].t()).view(B, T, Hkv, hd)
            q = apply_rope(rmsnorm(q, self.p[b + "attn_q_norm.weight"], eps), cos, sin)
            k = apply_rope(rmsnorm(k, self.p[b + "attn_k_norm.weight"], eps), cos, sin)
            k = k.repeat_interleave(H // Hkv, dim=2)
            v = v.repeat_interleave(H // Hkv, dim=2)
            att = torch.einsum("bihc,bjhc->bhij", q, k) / math.sqrt(hd)
            att = torch.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
            o = torch.einsum("bhij,bjhc->bihc", att, v).reshape(B * T, H * hd)
            h = x + o @ self.p[b + "attn_output.weight"].t()
            hn = rmsnorm(h, self.p[b + "ffn_norm.weight"], eps)
            y, aux, z = self.moe(hn, il, step, None if noise is None else noise[il], train, stats)
            aux_total, z_total = aux_total + aux, z_total + z
            x = h + y
        xf = rmsnorm(x, self.p["output_norm.weight"], eps)
        W = self.p["output.weight"] if "output.weight" in self.p else self.p["token_embd.weight"]
        logits = xf @ W.t()
        ce = torch.nn.functional.cross_entropy(logits, targets.flatten())
        return logits, ce, aux_total, z_total, stats


def main():
    out = sys.argv[1]
    cfg = json.load(open(os.path.join(out, "config.json")))
    layout = cfg["layout"]
    flat = np.fromfile(os.path.join(out, "params.bin"), dtype=np.float32)
    params = {}
    for t in layout:
        a = flat[t["offset"]:t["offset"] + t["size"]].reshape(t["shape"])
        params[t["name"]] = torch.tensor(a.copy(), requires_grad=True)
    steps, B, T = cfg["steps"], cfg["batch"], cfg["n_ctx"]
    tokens = torch.tensor(np.fromfile(os.path.join(out, "tokens.bin"), dtype=np.int32).astype(np.int64)).view(steps, B, T)
    targets = torch.tensor(np.fromfile(os.path.join(out, "targets.bin"), dtype=np.int32).astype(np.int64)).view(steps, B, T)
    noise = None
    if os.path.exists(os.path.join(out, "noise.bin")):
        S = cfg["n_expert"] + cfg["routing"]["n_null"]
        noise = torch.tensor(np.fromfile(os.path.join(out, "noise.bin"), dtype=np.float32)).view(steps, cfg["n_layer"], B * T, S)
    model = Reference(cfg, params)
    E = cfg["n_expert"]
    model.bias = [torch.zeros(E) if cfg["routing"]["bias_rate"] > 0 else None for _ in range(cfg["n_layer"])]

    # Step 0: logits, losses, gradients.
    logits, ce, aux, z, stats = model.forward(tokens[0], targets[0], 0, None if noise is None else noise[0])
    loss = ce + aux + z
    loss.backward()
    logits.detach().numpy().astype(np.float32).tofile(os.path.join(out, "ref_logits.bin"))
    grads = np.zeros_like(flat)
    for t in layout:
        g = params[t["name"]].grad
        grads[t["offset"]:t["offset"] + t["size"]] = g.numpy().flatten() if g is not None else 0.0
    grads.tofile(os.path.join(out, "ref_grads.bin"))
    ids = [i.numpy().astype(np.int32) for i in stats["ids"]]
    np.concatenate([i.flatten() for i in ids]).tofile(os.path.join(out, "ref_ids.bin"))
    result = {"ce": ce.item(), "aux": aux.item(), "z": z.item(), "loss": loss.item(), "ids_per_layer": ids[0].size}

    # N AdamW steps (the first reuses the gradients above), clipping, schedule, aux-loss-free bias updates.
    o = cfg["optim"]
    decay = [params[t["name"]] for t in layout if t["decay"]]
    no_decay = [params[t["name"]] for t in layout if not t["decay"]]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": o["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])

    def lr_at(s):
        if s < o["warmup"]:
            return o["lr"] * (s + 1) / o["warmup"]
        span = max(1, o["steps"] - o["warmup"])
        prog = min(1.0, (s - o["warmup"]) / span)
        return o["min_lr"] + 0.5 * (o["lr"] - o["min_lr"]) * (1 + math.cos(math.pi * prog))

    losses = []
    for s in range(steps):
        if s > 0:
            opt.zero_grad()
            logits, ce, aux, z, stats = model.forward(tokens[s], targets[s], s, None if noise is None else noise[s])
            loss = ce + aux + z
            loss.backward()
        losses.append(loss.item())
        if o["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), o["clip"])
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        opt.step()
        rate = cfg["routing"]["bias_rate"]
        if rate > 0:
            for il in range(cfg["n_layer"]):
                load = stats["load"][il][:E]
                model.bias[il] += rate * torch.sign(load.mean() - load)
    result["losses"] = losses
    final = np.zeros_like(flat)
    for t in layout:
        final[t["offset"]:t["offset"] + t["size"]] = params[t["name"]].detach().numpy().flatten()
    final.tofile(os.path.join(out, "ref_params.bin"))
    if cfg["routing"]["bias_rate"] > 0:
        np.concatenate([b.numpy() for b in model.bias]).astype(np.float32).tofile(os.path.join(out, "ref_bias.bin"))
    json.dump(result, open(os.path.join(out, "ref_result.json"), "w"))


if __name__ == "__main__":
    main()
