#!/usr/bin/env python3
"""Training throughput of the same qwen3moe MoE model in PyTorch, written the way Hugging Face's Qwen3-MoE /
Mixtral blocks are (nn.Linear experts in a ModuleList; a loop over experts with torch.where / index_add_;
eager attention with a causal mask; load-balancing and z losses), trained with torch.optim.AdamW and
clip_grad_norm_ on random tokens. Compare with `moe train --bench` on the same flags and thread count.

usage: torch_bench.py --layers 6 --hidden 256 --heads 4 --kv-heads 4 --head-dim 64 --experts 8 --top-k 2
                      --expert-ffn 512 --vocab-size 4096 --ctx 256 --batch 16 --threads 2 --bench-steps 5
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Expert(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class SparseMoeBlock(nn.Module):  # as transformers' Qwen3MoeSparseMoeBlock
    def __init__(self, a):
        super().__init__()
        self.E, self.k = a.experts, a.top_k
        self.gate = nn.Linear(a.hidden, a.experts, bias=False)
        self.experts = nn.ModuleList([Expert(a.hidden, a.expert_ffn) for _ in range(a.experts)])

    def forward(self, x):
        router_logits = self.gate(x)
        routing_weights = F.softmax(router_logits, dim=1, dtype=torch.float)
        routing_weights, selected = torch.topk(routing_weights, self.k, dim=-1)
        routing_weights = routing_weights / routing_weights.sum(dim=-1, keepdim=True)
        out = torch.zeros_like(x)
        expert_mask = F.one_hot(selected, num_classes=self.E).permute(2, 1, 0)
        for e in range(self.E):
            idx, top_x = torch.where(expert_mask[e])
            if top_x.numel() == 0:
                continue
            h = self.experts[e](x[top_x]) * routing_weights[top_x, idx, None]
            out.index_add_(0, top_x, h)
        return out, router_logits, selected


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        d, H, Hkv, hd = a.hidden, a.heads, a.kv_heads, a.head_dim
        self.H, self.Hkv, self.hd = H, Hkv, hd
        self.input_layernorm = RMSNorm(d, 1e-6)
        self.q_proj = nn.Linear(d, H * hd, bias=False)
        self.k_proj = nn.Linear(d, Hkv * hd, bias=False)
        self.v_proj = nn.Linear(d, Hkv * hd, bias=False)
        self.o_proj = nn.Linear(H * hd, d, bias=False)
        self.q_norm = RMSNorm(hd, 1e-6)
        self.k_norm = RMSNorm(hd, 1e-6)
        self.post_attention_layernorm = RMSNorm(d, 1e-6)
        self.mlp = SparseMoeBlock(a)

    def forward(self, x, cos, sin, mask):
        B, T, d = x.shape
        h = self.input_layernorm(x)
        q = self.q_norm(self.q_proj(h).view(B, T, self.H, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k_proj(h).view(B, T, self.Hkv, self.hd)).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.Hkv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(self.H // self.Hkv, dim=1)
        v = v.repeat_interleave(self.H // self.Hkv, dim=1)
        att = (q @ k.transpose(2, 3)) / math.sqrt(self.hd) + mask
        att = F.softmax(att, dim=-1, dtype=torch.float32)
        o = (att @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o_proj(o)
        y, logits, selected = self.mlp(self.post_attention_layernorm(x).view(B * T, d))
        return x + y.view(B, T, d), logits, selected


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Model(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab_size, a.hidden)
        self.layers = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.norm = RMSNorm(a.hidden, 1e-6)
        inv = 10000.0 ** (-torch.arange(0, a.head_dim, 2, dtype=torch.float64) / a.head_dim)
        ang = torch.arange(a.ctx, dtype=torch.float64)[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos().float(), ang.sin().float()
        self.mask = torch.full((a.ctx, a.ctx), float("-inf")).triu(1)
        self.E, self.k = a.experts, a.top_k

    def forward(self, tokens, targets):
        x = self.embed_tokens(tokens)
        aux = torch.zeros(())
        z = torch.zeros(())
        for layer in self.layers:
            x, logits, selected = layer(x, self.cos, self.sin, self.mask)
            probs = F.softmax(logits, dim=-1)  # load-balancing loss (transformers' load_balancing_loss_func)
            tokens_per_expert = F.one_hot(selected, self.E).float().mean(0).sum(0) / self.k
            aux = aux + 0.01 * self.E * (tokens_per_expert * probs.mean(0)).sum()
            z = z + 0.001 * torch.logsumexp(logits, dim=-1).pow(2).mean()
        logits = self.norm(x) @ self.embed_tokens.weight.t()  # tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1)) + aux + z


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 6), ("hidden", 256), ("heads", 4), ("kv-heads", 4), ("head-dim", 64),
                          ("experts", 8), ("top-k", 2), ("expert-ffn", 512), ("vocab-size", 4096), ("ctx", 256),
                          ("batch", 16), ("threads", 2), ("bench-steps", 5), ("warmup", 2)]:
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a)
    decay = [q for n, q in model.named_parameters() if q.dim() >= 2]
    no_decay = [q for n, q in model.named_parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    tokens = torch.randint(0, a.vocab_size, (a.batch, a.ctx))
    targets = torch.randint(0, a.vocab_size, (a.batch, a.ctx))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.bench_steps):
        step()
    secs = time.perf_counter() - t0
    tok_s = a.bench_steps * a.batch * a.ctx / secs
    print(f"torch bench: {a.bench_steps} steps of {a.batch * a.ctx} tokens in {secs:.2f} s: {tok_s:.0f} tokens/s "
          f"({a.threads} threads, torch {torch.__version__})")
    print(f"{tok_s:.1f}")


if __name__ == "__main__":
    main()
