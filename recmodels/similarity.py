"""Exact cosine top-K item similarity in float32, chunked: O(items x K) memory, GPU when the vectors are there."""

from __future__ import annotations

import torch


@torch.no_grad()
def cosine_topk(vectors: torch.Tensor, k: int = 50, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For every item, its ``k`` most cosine-similar *other* items.

    Returns ``(idx, score)``, both ``[n_items, k']`` with ``k' = min(k, n_items - 1)``, sorted by score
    descending (ties broken by lower index). Zero vectors get score 0 against everything.
    Memory: one ``chunk x n_items`` score block at a time plus the output.
    """
    n = vectors.shape[0]
    kk = min(k, max(n - 1, 0))
    v = vectors.float()
    v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
    out_idx = torch.empty((n, kk), dtype=torch.int64, device=v.device)
    out_val = torch.empty((n, kk), dtype=torch.float32, device=v.device)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        # float32 on every device, never bf16 autocast: on clustered vectors bf16 ties most adjacent
        # top-K scores, which lowers conservative ranks and makes the published order arbitrary
        with torch.autocast(v.device.type, enabled=False):
            block = v[start:stop].float() @ v.T.float()
        rows = torch.arange(stop - start, device=v.device)
        block[rows, rows + start] = -float("inf")  # an item is not its own neighbour
        val, idx = torch.topk(block, kk, dim=1, sorted=True)
        out_idx[start:stop] = idx
        out_val[start:stop] = val
    return out_idx, out_val
