"""Small measurements the teaching notebooks 00-02 show: what the benchmark's twins share, how long encoding
takes against a cache load, the same cosines in two precisions, and which single frame scores how well.

Each function computes one table or one set of numbers; the notebooks print them and narrate.

* :func:`order_pairs_sharing_frames` -- which order-twin pairs hold the same multiset of sampled frames, and the
  kinds of the two swapped events (notebook 00).
* :func:`time_encode_and_load` -- seconds to encode a split's videos vs to load the same features from a feature
  cache, each repeated, with the encoder already in memory (notebook 01).
* :func:`mean_pool_cosines` -- meanP's cosines computed in a chosen dtype and summation order (notebook 02's tie
  demo: float64 with a canonical order vs float32 with each video's frames summed in its own random order).
* :func:`objects_in_view` / :func:`single_frame_table` -- R@1 of mean pooling over one sampled frame at each
  position, per query kind, next to how many of the video's event objects that frame shows (notebook 02).
* :func:`twin_frame_cosines` -- can the frame features see what a twin changes? Per twin pair, the cosine between
  the two videos' features at the sampled frame where their pixels differ most, beside random pairs (issue 14).
* :func:`text_cosines` -- can the text tower see it? The cosine between a caption and its variants (a flipped
  direction, a paraphrase, another colour).
* :func:`direction_probe` -- is a move's direction *readable* from the frozen frame features? A linear classifier
  on the features of the first and last sampled frame inside each move event, trained on one split and tested on
  another.
* :func:`direction_readout` -- can a head's video side *learn* to name it, told the answer? A head plus a linear
  layer trained with direction labels on the single-move videos of a split, scored on another (issue 14).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "order_pairs_sharing_frames",
    "time_encode_and_load",
    "mean_pool_cosines",
    "objects_in_view",
    "single_frame_table",
    "twin_frame_cosines",
    "text_cosines",
    "has_video_specs",
    "direction_probe",
    "single_move_videos",
    "direction_readout",
]


# --------------------------------------------------------------------------------------------- notebook 00
def order_pairs_sharing_frames(videos: Sequence[dict], twins: Sequence[dict], same_frames: Callable[[str, str], bool]):
    """One row per order-twin pair: ``video_id``, ``twin_id``, ``swapped`` (the kinds of the two swapped events,
    e.g. ``"move + move"``) and ``same multiset of frames`` (``same_frames(video_id, twin_id)``).

    ``videos`` are the annotation's video records (with ``spec``), ``twins`` its twin records; an order twin
    swaps events ``event_index`` and ``event_index + 1``.
    """
    import pandas as pd

    spec = {v["video_id"]: v["spec"] for v in videos}
    rows = []
    for t in twins:
        if t["factor"] != "order":
            continue
        e = int(t["event_index"])
        events = spec[t["video_id"]]["events"]
        rows.append(
            {
                "video_id": t["video_id"],
                "twin_id": t["twin_id"],
                "swapped": f"{events[e]['kind']} + {events[e + 1]['kind']}",
                "same multiset of frames": bool(same_frames(t["video_id"], t["twin_id"])),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- notebook 01
def time_encode_and_load(encoder, data, num_frames: int = 12, sampler: str = "uniform", repeats: int = 2) -> dict:
    """Seconds to encode every video of ``data`` and to load the same features from a feature cache.

    The encoder is the one passed in (already loaded), so no timing includes loading it, and the project's
    own cache is neither read nor written: a fresh temporary cache directory is used. The first call is a
    miss (encode, then write the entry; it also pays one-off warm-ups: the video decoder, thread pools, the
    first forward pass); then ``repeats - 1`` more encodes without a cache, and ``repeats`` loads from the
    temporary cache (each reads the tensor file, checks its sha256 against the manifest and unpickles it).
    Returns ``{"first": s, "encode": [s, ...], "load": [s, ...], "videos": V, "bytes": size of the entry}``.
    """
    from .cache import FeatureCache
    from .features import encode_videos

    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 (a first encode with warm-ups, then repeated ones), got {repeats}")
    kw = {"num_frames": num_frames, "mode": sampler, "progress": False}
    encode_s, load_s = [], []
    with tempfile.TemporaryDirectory(prefix="tvr-cache-demo-") as tmp:
        store = FeatureCache(tmp)
        t0 = time.perf_counter()
        encode_videos(encoder, data, cache=store, **kw)  # a miss: encode and write the entry
        first = time.perf_counter() - t0
        for _ in range(repeats - 1):
            t0 = time.perf_counter()
            encode_videos(encoder, data, cache=False, **kw)
            encode_s.append(time.perf_counter() - t0)
        for _ in range(repeats):
            t0 = time.perf_counter()
            encode_videos(encoder, data, cache=store, **kw)  # a hit: read, verify, unpickle
            load_s.append(time.perf_counter() - t0)
        size = int(sum(p.stat().st_size for p in store.root.glob("*.pt")))
    return {"first": first, "encode": encode_s, "load": load_s, "videos": data.num_videos, "bytes": size}


# --------------------------------------------------------------------------------------------- notebook 02
def mean_pool_cosines(
    sentence: torch.Tensor,
    frames: torch.Tensor,
    mask: torch.Tensor,
    dtype: torch.dtype = torch.float64,
    order: str = "sorted",
    seed: int = 0,
) -> np.ndarray:
    """meanP's cosines ``[T, V]`` (:mod:`tvrlib.heads.mean_pooling`) computed in ``dtype`` with a chosen
    summation order over each video's frames.

    ``order="sorted"``: the unit frame vectors are summed in ascending order per dimension, a canonical
    order, so two videos holding the same frames in any order get bitwise identical sums (and tie exactly);
    ``"shuffled"``: each video's frames are added one by one in a random order of its own (``seed``), as
    an order-blind head whose arithmetic follows the frame order would do, so the same frames in another
    order round differently. Everything (normalising, summing, the cosine) happens in ``dtype``.
    """
    if order not in ("sorted", "shuffled"):
        raise ValueError(f"order must be 'sorted' or 'shuffled', got {order!r}")
    fr = F.normalize(frames.to(dtype), dim=-1) * mask[..., None].to(dtype)
    if order == "sorted":
        pooled = fr.sort(dim=1).values.sum(dim=1)
    else:
        gen = torch.Generator().manual_seed(seed)
        v, f = mask.shape
        perm = torch.argsort(torch.rand(v, f, generator=gen), dim=1)
        pooled = torch.zeros(v, fr.shape[-1], dtype=dtype)
        for j in range(f):
            pooled = pooled + fr[torch.arange(v), perm[:, j]]
    pooled = pooled / mask.sum(dim=1, keepdim=True).clamp(min=1).to(dtype)
    text = F.normalize(sentence.to(dtype), dim=-1)
    return (text @ F.normalize(pooled, dim=-1).T).numpy()


def has_video_specs(data) -> bool:
    """Whether ``data`` is a synthetic split whose videos carry their generating specs (``meta["video_fields"]``
    with a ``"spec"``): what the probe, the readout and the other event-level diagnostics need. Real MSR-VTT also
    has ``video_fields`` (its json's per-video fields), without specs."""
    fields = getattr(data, "meta", {}).get("video_fields") or []
    return bool(fields) and all("spec" in f for f in fields)


def _sampled_specs(data, num_frames: int, sampler: str):
    """``(column, VideoSpec, sampled frame indices [num_frames])`` for every video of a synthetic split (its
    ``meta["video_fields"]``); other data raises ``ValueError``."""
    from .synthetic.world import VideoSpec
    from .video import sample_indices

    fields = data.meta.get("video_fields")
    if not has_video_specs(data):
        raise ValueError(f"{data.dataset}/{data.split} has no synthetic video specs (meta['video_fields'])")
    specs = [VideoSpec.from_json(fld["spec"]) for fld in fields]
    return [
        (j, spec, sample_indices(spec.num_frames, num_frames, sampler)[:num_frames]) for j, spec in enumerate(specs)
    ]


def objects_in_view(data, num_frames: int = 12, sampler: str = "uniform") -> np.ndarray:
    """``float [V, num_frames]``: the fraction of a synthetic video's *event objects* (the objects its
    events are about, which its whole-video captions name) visible in each sampled frame.

    An object that appears counts from the middle of its fade-in, one that disappears until the middle of
    its fade-out; a moving object counts while it crosses the frame (it is off-screen on the first and last
    frame of its move and absent outside it, unless it is also a static object). Follows
    :func:`tvrlib.synthetic.world.render_frame`. Needs ``meta["video_fields"]``.
    """
    sampled = _sampled_specs(data, num_frames, sampler)
    out = np.zeros((len(sampled), num_frames))
    for j, spec, idx in sampled:
        named = {e.obj for e in spec.events}
        bounds = spec.bounds()
        for k, f in enumerate(idx):
            alpha = {i.obj: 1.0 for i in spec.initial}
            mover = None
            for e, (s, t) in zip(spec.events, bounds):
                if f < s:
                    break
                p = min(1.0, (f - s) / (t - s))
                if e.kind == "appear":
                    alpha[e.obj] = p
                elif e.kind == "disappear":
                    alpha[e.obj] = 1.0 - p
                elif e.kind == "move" and 0.0 < p < 1.0:
                    mover = e.obj
            seen = {o for o, a in alpha.items() if a >= 0.5} | ({mover} if mover is not None else set())
            out[j, k] = len(seen & named) / max(1, len(named))
    return out


def single_frame_table(
    head, queries, gold, videos, kinds, in_view: np.ndarray | None = None, spans: Sequence[tuple[int, int]] = ()
):
    """R@1 (t2v, %) of ``head`` when each video keeps only the frame at one position, for every position,
    plus the row ``"all"`` (every valid frame), overall and per query kind (``kinds[i]`` of query ``i``), and
    MnR over all queries.

    ``spans``: extra rows ``"a-b"`` that keep the frames at positions ``a .. b`` (inclusive). ``in_view``
    (``[V, F]``, e.g. :func:`objects_in_view`) adds the mean over the query videos of the fraction of event
    objects the kept frames show. Returns a DataFrame indexed by the kept frames.
    """
    import pandas as pd

    from . import metrics as M
    from .heads.base import VideoInput

    kinds = np.asarray(kinds)
    gold = np.asarray(gold)
    names = list(dict.fromkeys(kinds.tolist()))

    def row(sim) -> dict:
        r = M.ranks_t2v(sim, gold)
        out = {"R1 all": M.summarize(r)["R1"]}
        for k in names:
            out[f"R1 {k} captions"] = M.summarize(r[kinds == k])["R1"]
        out["MnR all"] = M.summarize(r)["MnR"]
        return out

    num_frames = videos.mask.shape[1]
    kept = {"all": (0, num_frames - 1), **{f: (f, f) for f in range(num_frames)}}
    kept.update({f"{a}-{b}": (a, b) for a, b in spans})
    rows, seen = {}, None if in_view is None else np.asarray(in_view)[gold]
    for name, (a, b) in kept.items():
        keep = torch.zeros_like(videos.mask)
        keep[:, a : b + 1] = videos.mask[:, a : b + 1]
        rows[name] = row(head.score(queries, VideoInput(videos.frames, keep)))
        if seen is not None:
            rows[name]["event objects in view"] = float(seen[:, a : b + 1].mean())
    table = pd.DataFrame(rows).T
    table.index = table.index.map(str)
    table.index.name = "frames kept"
    return table


# --------------------------------------------------------------------------------------------- issue 14
@torch.no_grad()
def twin_frame_cosines(encoder, data, factor: str = "direction", num_frames: int = 12, n_random: int = 200, seed=0):
    """One row per twin pair of ``factor`` in ``data`` (a synthetic split with ``meta["twins"]``): the sampled
    frame ``frame`` where the two videos' pixels differ most (mean absolute difference), that difference, and the
    ``cosine`` between the encoder's CLS features of the two frames there. Rows with ``pair = "random"`` do the
    same for ``n_random`` random pairs of different videos (the scale of "different"). A frame tower that sees what
    the twins change gives twin cosines well below 1; one that does not gives cosines near 1 however different the
    pixels are.
    """
    import pandas as pd

    from .video import sample_frames

    col = {v.video_id: j for j, v in enumerate(data.videos)}
    pairs = [
        (col[t["video_id"]], col[t["twin_id"]])
        for t in data.meta.get("twins", [])
        if t["factor"] == factor and t["video_id"] in col and t["twin_id"] in col
    ]
    if not pairs:
        raise ValueError(f"no {factor!r} twin pairs in this split (meta['twins'] holds the synthetic twins)")
    rng = np.random.default_rng(seed)
    a, b = rng.integers(len(data.videos), size=(2, n_random))
    keep = a != b
    kinds = ["twin"] * len(pairs) + ["random"] * int(keep.sum())
    pairs += list(zip(a[keep].tolist(), b[keep].tolist()))

    def frames(j):
        return sample_frames(data.videos[j].path, num_frames, encoder.image_size, "uniform")[0]

    rows, firsts, seconds = [], [], []
    for kind, (i, j) in zip(kinds, pairs):
        fi, fj = frames(i), frames(j)
        diff = np.abs(fi.astype(np.int16) - fj.astype(np.int16)).mean(axis=(1, 2, 3))
        f = int(diff.argmax())
        firsts.append(fi[f])
        seconds.append(fj[f])
        rows.append({"pair": kind, "video": i, "other": j, "frame": f, "pixel_difference": float(diff[f])})
    za = F.normalize(encoder.encode_frames(np.stack(firsts), with_patches=False).cls, dim=-1)
    zb = F.normalize(encoder.encode_frames(np.stack(seconds), with_patches=False).cls, dim=-1)
    out = pd.DataFrame(rows)
    out["cosine"] = (za * zb).sum(-1).numpy()
    return out


@torch.no_grad()
def text_cosines(encoder, caption: str, variants: dict[str, str]):
    """The cosine between ``caption``'s sentence embedding and each variant's (``{name: text}``): a table with one
    row per variant. A text tower that reads direction puts a flipped direction further away than a paraphrase."""
    import pandas as pd

    texts = [caption, *variants.values()]
    z = F.normalize(encoder.encode_text(texts, with_words=False).sentence, dim=-1)
    return pd.DataFrame(
        {"variant": list(variants), "text": list(variants.values()), "cosine": (z[1:] @ z[0]).numpy()}
    ).set_index("variant")


def _move_frame_pairs(data, frames: torch.Tensor, num_frames: int, sampler: str):
    """``(features [M, 2D], direction labels [M])``: per move event of a synthetic split whose span holds at least
    two sampled frames (the object is on screen strictly inside its span), the L2-normalised features of the first
    and of the last of those frames, side by side. ``frames [V, F, D]``: the split's cached frame features."""
    feats = F.normalize(frames.float(), dim=-1)
    xs, ys = [], []
    for j, spec, idx in _sampled_specs(data, num_frames, sampler):
        for e, (s, t) in zip(spec.events, spec.bounds(), strict=True):
            inside = [k for k, f in enumerate(idx) if s < f < t]
            if e.kind == "move" and len(inside) >= 2:
                xs.append(torch.cat([feats[j, inside[0]], feats[j, inside[-1]]]))
                ys.append(e.direction)
    if not xs:
        raise ValueError(f"{data.dataset}/{data.split}: no move event spans two sampled frames")
    return torch.stack(xs), np.array(ys)


def direction_probe(train_data, train_frames, test_data, test_frames, num_frames: int = 12, sampler="uniform"):
    """How well a *linear* classifier reads a move's direction (left, right, up, down; chance 25 %) from frozen
    frame features: trained on the moves of ``train_data`` (features ``train_frames [V, F, D]``), scored on those
    of ``test_data``. Each example is the first and the last sampled frame inside one move event, so the probe is
    told *when* the move happens and only has to read *where* the object is at two moments; a head trained for
    retrieval is told neither. Multinomial logistic regression (L-BFGS, a small L2 penalty), deterministic.
    Returns ``{"train_accuracy", "test_accuracy", "n_train", "n_test"}``."""
    xa, ya = _move_frame_pairs(train_data, train_frames, num_frames, sampler)
    xb, yb = _move_frame_pairs(test_data, test_frames, num_frames, sampler)
    labels = sorted(set(ya) | set(yb))
    code = {d: i for i, d in enumerate(labels)}
    ta, tb = torch.as_tensor([code[d] for d in ya]), torch.as_tensor([code[d] for d in yb])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        lin = torch.nn.Linear(xa.shape[1], len(labels))
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(xa), ta) + 1e-4 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        acc = lambda x, y: float((lin(x).argmax(1) == y).float().mean())  # noqa: E731
        return {"train_accuracy": acc(xa, ta), "test_accuracy": acc(xb, tb), "n_train": len(ya), "n_test": len(yb)}


def single_move_videos(data, num_frames: int, sampler: str) -> tuple[np.ndarray, list[str]]:
    """``(columns, directions)``: the videos of a synthetic split with exactly one move event, and its direction."""
    cols, dirs = [], []
    for j, spec, _ in _sampled_specs(data, num_frames, sampler):
        moves = [e for e in spec.events if e.kind == "move"]
        if len(moves) == 1:
            cols.append(j)
            dirs.append(moves[0].direction)
    if not cols:
        raise ValueError(f"{data.dataset}/{data.split}: no video with exactly one move event")
    return np.asarray(cols), dirs


@contextlib.contextmanager
def _torch_threads(n: int):
    """Run the block with ``n`` torch threads, then put the previous count back."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def direction_readout(
    head: str,
    train_data,
    train_frames,
    test_data,
    test_frames,
    *,
    n_train: int | None = None,
    head_options: dict | None = None,
    epochs: int = 60,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    num_frames: int = 12,
    sampler: str = "uniform",
) -> dict:
    """Can a head's *video side* learn to name a move's direction when it is told the answer? The registered dual
    encoder ``head`` (e.g. ``"seqTransf"``, ``"seqLSTM"``; built with ``head_options``, e.g. ``{"layers": 2}``,
    random init) plus
    one linear layer is trained with cross-entropy to name the direction (left, right, up, down; chance 25 %) of
    the one move event in each training video that has exactly one (the first ``n_train`` of them; None: all),
    for a fixed ``epochs`` (no model selection), and scored on the test split's such videos.

    This is the easiest version of what retrieval asks of a temporal head: direct labels instead of a caption
    among in-batch negatives, frozen frame features (``[V, F, D]``, from the feature cache) that carry position
    (:func:`direction_probe`). Unlike the probe, the head is not told *when* the move happens nor which object
    moves: it must find both. A head that cannot do this with labels will not do it from captions; how its
    accuracy grows with ``n_train`` says whether more training videos would help.
    Returns ``{"train_accuracy", "test_accuracy", "n_train", "n_test", "seconds"}``."""
    from .heads import HEADS, VideoInput

    ca, ya = single_move_videos(train_data, num_frames, sampler)
    cb, yb = single_move_videos(test_data, num_frames, sampler)
    if n_train is not None:
        if n_train > len(ca):
            raise ValueError(f"n_train={n_train} but {train_data.split} has only {len(ca)} single-move videos")
        ca, ya = ca[:n_train], ya[:n_train]
    labels = sorted(set(ya) | set(yb))
    code = {d: i for i, d in enumerate(labels)}
    ta, tb = torch.as_tensor([code[d] for d in ya]), torch.as_tensor([code[d] for d in yb])
    xa, xb = train_frames[torch.as_tensor(ca)].float(), test_frames[torch.as_tensor(cb)].float()
    ma = torch.ones(xa.shape[:2], dtype=torch.bool)
    mb = torch.ones(xb.shape[:2], dtype=torch.bool)
    t0 = time.perf_counter()
    # one thread: these tensors are small, and a second OpenMP thread on a shared machine made the same call take
    # 2-66 s instead of 0.4 s (threads spin-waiting for a core another process holds)
    with _torch_threads(1), torch.random.fork_rng():
        torch.manual_seed(seed)
        net = HEADS.build(head, dim=xa.shape[-1], **(head_options or {}))
        out = torch.nn.Linear(xa.shape[-1], len(labels))
        params = [*net.parameters(), *out.parameters()]
        opt = torch.optim.AdamW(params, lr=lr)
        gen = torch.Generator().manual_seed(seed)

        def logits(x, m):
            return out(net.embed_video(VideoInput(x, m)))

        with torch.enable_grad():
            for _ in range(epochs):
                net.train()
                perm = torch.randperm(len(ta), generator=gen)
                for i in range(0, len(ta), batch_size):
                    b = perm[i : i + batch_size]
                    loss = F.cross_entropy(logits(xa[b], ma[b]), ta[b])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        net.eval()
        with torch.no_grad():
            acc_a = float((logits(xa, ma).argmax(1) == ta).float().mean())
            acc_b = float((logits(xb, mb).argmax(1) == tb).float().mean())
    return {
        "train_accuracy": acc_a,
        "test_accuracy": acc_b,
        "n_train": len(ta),
        "n_test": len(tb),
        "seconds": time.perf_counter() - t0,
    }
