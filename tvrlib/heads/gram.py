"""The cosine of an attention-pooled video, with and without building the pooled vector (the Gram-matrix path).

Paper: CrossAttnGL (docs/papers.md), section 4.2, eq. 4.9: the text-conditioned video embedding is an attention-weighted
sum of frame vectors, then compared with the text by cosine. A text-conditioned head pools every
video once *per text*, so for ``T`` texts and ``V`` videos it produces ``T x V`` pooled vectors of
size ``D``. X-Pool's reference code builds that whole ``[V, T, D]`` tensor (X-Pool in docs/papers.md,
method_cards.md card 2: 1,000 x 1,000 x 512 floats = 2 GB on MSR-VTT 1k-A; on MSVD it runs out of memory).

For a pooled video that is a *linear* attention-weighted sum of per-frame vectors ``u_{v,f}``,
scored by a cosine with a text vector ``t``, no pooled vector is needed at all::

    p_{t,v} = sum_f w_{t,v,f} u_{v,f}                                      (eq. 4.9)

    cos(t, p_{t,v}) = sum_f w_{t,v,f} (t . u_{v,f})
                      / ( |t| * sqrt( w_{t,v}^T G_v w_{t,v} ) ),   G_v = U_v U_v^T  [F, F]

The numerator needs the frame-text dot products ``t . u_{v,f}`` (one matrix product
``[T, D] x [D, V*F]``), the norm needs each video's ``F x F`` Gram matrix (computed once per
video). Memory per pair: a few ``F``-vectors instead of ``D``-vectors.
:func:`pooled_cosine_materialised` computes the same cosine the literal way (it is the reference
the tests compare with); :func:`pooled_cosine_gram` the Gram way. X-Pool nests the same identity
through its LayerNorms (:meth:`tvrlib.heads.xpool.XPool.moment_side`).

Shapes: texts ``[T, D]``, frame values ``[V, F, D]``, attention weights ``[T, V, F]``, scores ``[T, V]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: floor of every norm (the eps of F.normalize) on the pooled-cosine paths
EPS = 1e-12


def attention_pool(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Materialise the pooled vectors: ``weights [T, V, F]``, ``values [V, F, D]`` -> ``[T, V, D]`` (eq. 4.9)."""
    return torch.einsum("tvf,vfd->tvd", weights, values)  # eq. 4.9


def pooled_cosine_materialised(target: torch.Tensor, weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``cos(target_t, sum_f w_{t,v,f} values_{v,f})`` by building the ``[T, V, D]`` pooled tensor -> ``[T, V]``."""
    pooled = F.normalize(attention_pool(weights, values), dim=-1, eps=EPS)
    return torch.einsum("tvd,td->tv", pooled, F.normalize(target, dim=-1, eps=EPS))


def gram_matrices(values: torch.Tensor) -> torch.Tensor:
    """Each video's frame Gram matrix ``G_v = U_v U_v^T``: ``[V, F, D]`` -> ``[V, F, F]``."""
    return values @ values.transpose(1, 2)


def quadratic_form(weights: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """``w_{t,v}^T G_v w_{t,v}`` for every pair: ``weights [T, V, F]``, ``gram [V, F, F]`` -> ``[T, V]``.

    This is ``|sum_f w_f u_f|^2`` when ``G_v`` is the Gram matrix of the vectors ``u_f``.
    """
    wg = torch.bmm(weights.transpose(0, 1), gram).transpose(0, 1)  # [T, V, F]: (G_v w)_f
    return (wg * weights).sum(-1)


def pooled_cosine_gram(
    target: torch.Tensor,
    weights: torch.Tensor,
    values: torch.Tensor,
    gram: torch.Tensor | None = None,
    dots: torch.Tensor | None = None,
) -> torch.Tensor:
    """The same cosine as :func:`pooled_cosine_materialised` without any pooled vector -> ``[T, V]``.

    ``target [T, D]``, ``weights [T, V, F]``, ``values [V, F, D]``; optional precomputed
    ``gram [V, F, F]`` (:func:`gram_matrices`) and ``dots [T, V, F] = target . values``.
    """
    if gram is None:
        gram = gram_matrices(values)
    if dots is None:
        dots = (target @ values.reshape(-1, values.shape[-1]).T).view(len(target), *values.shape[:2])
    numerator = (weights * dots).sum(-1)  # sum_f w_f (t . u_f) = t . p  (eq. 4.9 inside the dot product)
    pooled_norm = quadratic_form(weights, gram).clamp_min(0.0).sqrt().clamp_min(EPS)  # |p_{t,v}|
    return numerator / (pooled_norm * target.norm(dim=-1, keepdim=True).clamp_min(EPS))
