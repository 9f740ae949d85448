#!/usr/bin/env python3
"""PyTorch's side of the from-scratch recipe of TRAINING.md ("From scratch: a small CNN trained
with triplet loss (LFW View 1)"), written to check visage's training stack (burn) against an
independent one. Run by bench/pytorch_scratch_view1.sh beside `visage train embedder`.

Everything but the stack is visage's own:
- the training chips: the ones `visage train embedder` cut and cached (64x64, dlib's 5-point
  alignment, padding 0.25; `$XDG_CACHE_HOME/visage/chips/{sha256 of the photo}-{size}-up{u}-{det}.rgb`),
  read in visage's order (person folders sorted, photos sorted, only --people's people, people
  with 2+ usable chips kept), so a label is the same person in both runs;
- the batches and the augmentation draws: visage's xorshift64* (`SeededRng`), its P x K sampler
  (`PkSampler`, shortfall Repeat) and `Augmentation::draw`/`apply` re-implemented below, from
  the same seeds (sampler: seed; augmentation: seed ^ 0x5eed), so both stacks see the very same
  4,000 batches of augmented chips;
- the input normalisation of the model descriptor, (x - 127.5) / 128;
- the network of visage_train::cnn::SmallCnn: 3x3 stride-2 convolutions (padding 1, no bias),
  batch normalisation (burn's: momentum 0.1, eps 1e-5, running variance fed the *biased* batch
  variance, unlike torch.nn.BatchNorm2d), ReLU, global average pooling, a linear layer with
  bias, x / sqrt(|x|^2 + 1e-12); initialisation: burn's defaults are Kaiming-uniform with
  bound 1/sqrt(fan_in) for weights and biases, which are PyTorch's defaults too (the draws differ);
- the loss of visage_train::TripletLoss: squared distances from the Gram matrix clamped at 0,
  mining on the detached distances as visage_train::mining::mine (batch-hard: farthest
  positive, closest negative, one triplet per anchor; batch-all: every triplet with a positive
  hinge; semi-hard: per positive pair the closest negative with d(a,p) < d(a,n) < d(a,p) +
  margin; ties to the lowest index), hinge with margin 0.2, mean over the mined triplets (0 with
  a graph when none);
- the optimiser: burn's AdamConfig::new() (beta 0.9/0.999, eps 1e-5 instead of PyTorch's 1e-8,
  no weight decay), the learning rate visage_train::schedule::cosine_lr (base at step 0, a
  cosine to 1% by the last step), one step per batch.

The trained network is written as a visage model file (safetensors, format visage-model/1, the
engine's tensor names and layouts, batch norm folded into bn{i}.gamma/beta as SmallCnn::export
does, the descriptor with thresholds chosen as `train embedder` chooses them), so that
`visage --model FILE eval lfw` measures it on exactly visage's evaluation path.

Usage: pytorch_scratch_view1.py --images DIR --people FILE --mining batch-all --out FILE
prints one JSON line (the model id, seconds of training, first/last loss); also
  pytorch_scratch_view1.py --images DIR --people FILE --out X --check-draws BIN
  pytorch_scratch_view1.py compare-check OUT.check VISAGE_EMBED.jsonl
  pytorch_scratch_view1.py summarize DIR MINING...
Needs torch and numpy (no safetensors package: the file is written here).
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time

# OpenMP's default spin-waiting makes 2 threads 7-8x slower than 1 on a 2-core machine that
# another job shares (0.6-0.7 s a step against 0.08 s measured here): a waiting thread spins on
# the core the other one needs. Passive waiting is set before torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MASK = (1 << 64) - 1


class SeededRng:
    """visage_core::SeededRng: xorshift64*."""

    def __init__(self, seed):
        self.s = seed & MASK if seed != 0 else 0x9E3779B97F4A7C15

    def next_u64(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & MASK
        s ^= s >> 27
        self.s = s
        return (s * 0x2545F4914F6CDD1D) & MASK

    def uniform(self):
        return (self.next_u64() >> 11) / float(1 << 53)

    def below(self, n):
        return int(self.uniform() * n) % max(n, 1)


class PkSampler:
    """visage_train::PkSampler with Shortfall::Repeat."""

    def __init__(self, counts, p, k, seed):
        self.counts, self.p, self.k = counts, p, k
        self.eligible = [i for i, c in enumerate(counts) if c >= 2]
        assert len(self.eligible) >= p
        self.rng = SeededRng(seed)

    def next_batch(self):
        e, rng = self.eligible, self.rng
        for i in range(self.p):
            j = i + rng.below(len(e) - i)
            e[i], e[j] = e[j], e[i]
        people = e[: self.p]
        e.sort()
        rows = []
        for person in people:
            n = self.counts[person]
            scratch = list(range(n))
            distinct = min(n, self.k)
            for i in range(distinct):
                j = i + rng.below(n - i)
                scratch[i], scratch[j] = scratch[j], scratch[i]
            rows.extend((person, ph) for ph in scratch[:distinct])
            for _ in range(distinct, self.k):
                rows.append((person, rng.below(n)))
        return rows


def draw_augmentation(rng):
    """visage_train::augment::Augmentation::draw: five draws."""
    flip = rng.below(2) == 1
    dx, dy = rng.below(5) - 2, rng.below(5) - 2
    gain = 0.9 + 0.2 * rng.uniform()
    bias = 25.5 * (rng.uniform() - 0.5)
    return flip, dx, dy, gain, bias


def apply_augmentation(chip, a):
    """Augmentation::apply on an [h, w, 3] uint8 chip: flip, shift (edges repeated), gain, bias,
    rounded half away from zero and clamped to 0..255, all in f64 as in Rust."""
    flip, dx, dy, gain, bias = a
    size = chip.shape[0]
    x = np.arange(size)
    sx = np.clip((size - 1 - x if flip else x) + dx, 0, size - 1)
    sy = np.clip(x + dy, 0, size - 1)
    v = chip[sy][:, sx].astype(np.float64) * gain + bias
    r = np.floor(v)
    r += (v - r) >= 0.5  # Rust's f64::round for v >= 0; negative values clamp to 0 either way
    return np.clip(r, 0, 255).astype(np.uint8)


def read_people_list(path):
    """The names of an LFW people list (View 1: a count, then Name<TAB>count; View 2: folds;
    or plain names)."""
    names = set()
    for line in open(path, encoding="utf-8"):
        f = [x.strip() for x in line.split("\t")]
        if not line.strip():
            continue
        if len(f) == 1 and f[0].isdigit():
            continue
        names.add(f[0])
    return names


PHOTO_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "jfif"}


def training_chips(images, people_list, cache, size, upsample, detector):
    """The chips `visage train embedder` trains on, per person in its order (see
    train_embedder.rs training_chips/chip_of), from its chip cache."""
    names = read_people_list(people_list) if people_list else None
    people, no_face, missing = [], 0, []
    for name in sorted(os.listdir(images)):
        folder = os.path.join(images, name)
        if not os.path.isdir(folder) or (names is not None and name not in names):
            continue
        photos = sorted(f for f in os.listdir(folder) if os.path.splitext(f)[1][1:].lower() in PHOTO_EXTENSIONS and not os.path.isdir(os.path.join(folder, f)))
        if not photos:
            continue
        chips = []
        for f in photos:
            key = hashlib.sha256(open(os.path.join(folder, f), "rb").read()).hexdigest()
            chip = os.path.join(cache, f"{key}-{size}-up{upsample}-{detector}.rgb")
            if os.path.exists(chip) and os.path.getsize(chip) == size * size * 3:
                chips.append(np.fromfile(chip, dtype=np.uint8).reshape(size, size, 3))
            elif os.path.exists(os.path.join(cache, f"{key}-up{upsample}-{detector}.noface")):
                no_face += 1
            else:
                missing.append(os.path.join(folder, f))
        people.append(chips)
    if missing:
        sys.exit(f"{len(missing)} photos have no chip in {cache} (first: {missing[0]}): run `visage train embedder` on the same data first, it cuts and caches them")
    return [p for p in people if len(p) >= 2], no_face


class BurnBatchNorm(nn.Module):
    """burn's BatchNorm: batch statistics in training, the running ones updated with momentum
    0.1 from the biased batch variance; eps 1e-5."""

    def __init__(self, c, momentum=0.1, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.momentum, self.eps = momentum, eps

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
                self.running_mean.mul_(1 - self.momentum).add_(mean * self.momentum)
                self.running_var.mul_(1 - self.momentum).add_(var * self.momentum)
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps)


class SmallCnn(nn.Module):
    def __init__(self, channels, dim):
        super().__init__()
        convs, norms, cin = [], [], 3
        for c in channels:
            convs.append(nn.Conv2d(cin, c, 3, stride=2, padding=1, bias=False))
            norms.append(BurnBatchNorm(c))
            cin = c
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self.embed = nn.Linear(cin, dim)

    def forward(self, x):
        for c, n in zip(self.convs, self.norms):
            x = F.relu(n(c(x)))
        x = self.embed(x.mean(dim=(2, 3)))
        return x / torch.sqrt((x * x).sum(1, keepdim=True) + 1e-12)


def chips_tensor(chips):
    """[n, h, w, 3] uint8 -> [n, 3, h, w], (x - 127.5) * (1/128) as the descriptor says."""
    x = (np.asarray(chips, dtype=np.float32) - np.float32(127.5)) * np.float32(0.0078125)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def pairwise_squared(e):
    norms = (e * e).sum(1, keepdim=True)
    return (norms + norms.t() - 2.0 * e @ e.t()).clamp_min(0.0)


def mine(d, labels, margin, mining):
    """visage_train::mining::mine on the detached distances d (numpy f32 [n, n]): index lists
    of anchor-positive and anchor-negative entries, and the candidate count."""
    n = len(labels)
    same = labels[:, None] == labels[None, :]
    pos = same & ~np.eye(n, dtype=bool)
    neg = ~same
    m = np.float32(margin)
    if mining == "batch-hard":
        has = pos.any(1) & neg.any(1)
        p = np.argmax(np.where(pos, d, -np.inf), 1)  # first of the farthest
        ng = np.argmin(np.where(neg, d, np.inf), 1)  # first of the closest
        a = np.nonzero(has)[0]
        return a * n + p[a], a * n + ng[a], int(has.sum())
    if mining == "batch-all":
        valid = pos[:, :, None] & neg[:, None, :]
        hinge = d[:, :, None] - d[:, None, :] + m > 0
        a, p, ng = np.nonzero(valid & hinge)
        return a * n + p, a * n + ng, int(valid.sum())
    if mining == "semi-hard":
        anchors = neg.any(1)
        pa = pos & anchors[:, None]
        dap = d[:, :, None]
        dan = d[:, None, :]
        ok = neg[:, None, :] & (dap < dan) & (dan < dap + m) & pa[:, :, None]
        closest = np.argmin(np.where(ok, dan, np.inf), 2)
        a, p = np.nonzero(ok.any(2))
        return a * n + p, a * n + closest[a, p], int(pa.sum())
    raise ValueError(mining)


def pair_means(d, labels):
    same = labels[:, None] == labels[None, :]
    off = ~np.eye(len(labels), dtype=bool)
    pos, neg = same & off, ~same
    mean = lambda mask: float(d[mask].astype(np.float64).mean()) if mask.any() else 0.0
    return mean(pos), mean(neg)


def cosine_lr(base, step, steps):
    return base * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * step / steps)))


def best_threshold(train):
    """visage_eval::protocol::best_threshold."""
    dist = np.array([t[0] for t in train])
    same = np.array([t[1] for t in train])
    d = np.unique(dist)
    cand = np.concatenate([[d[0] - 1.0], (d[:-1] + d[1:]) / 2.0, [d[-1] + 1.0]])
    order = np.argsort(dist, kind="stable")
    sd, ss = dist[order], same[order]
    gen_below = np.concatenate([[0], np.cumsum(ss)])
    imp_below = np.concatenate([[0], np.cumsum(~ss)])
    i = np.searchsorted(sd, cand, side="left")  # count strictly below each candidate
    correct = gen_below[i] + ((~ss).sum() - imp_below[i])
    best = np.nonzero(correct == correct.max())[0]
    return float(cand[best[len(best) // 2]])


def training_thresholds(person, emb, seed):
    """train_embedder.rs training_thresholds: the best-accuracy threshold of each metric on
    10,000 same-person and 10,000 different-people pairs of the training chips."""
    by = {}
    for i, p in enumerate(person):
        by.setdefault(p, []).append(i)
    multi = [by[k] for k in sorted(by) if len(by[k]) >= 2]
    rng = SeededRng(seed)
    pairs = []
    for _ in range(10_000):
        v = multi[rng.below(len(multi))]
        x, y = rng.below(len(v)), rng.below(len(v) - 1)
        pairs.append((v[x], v[y + 1 if y >= x else y], True))
    while len(pairs) < 20_000:
        x, y = rng.below(len(person)), rng.below(len(person))
        if person[x] != person[y]:
            pairs.append((x, y, False))
    e = emb.astype(np.float32)
    a, b = e[[p[0] for p in pairs]], e[[p[1] for p in pairs]]
    same = [p[2] for p in pairs]
    l2 = np.sqrt(((a - b) ** 2).sum(1))
    cos = 1.0 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    s = np.abs(a) + np.abs(b)
    chi2 = np.where(s == 0, 0, (a - b) ** 2 / np.where(s == 0, 1, s)).sum(1)
    return {m: best_threshold(list(zip(v.astype(np.float64), same))) for m, v in (("l2", l2), ("cosine", cos), ("chi2", chi2))}


def export_tensors(net, channels):
    """SmallCnn::export's tensors: conv{i}.weight [out, in, 3, 3]; bn{i}.gamma/beta the folded
    affine gamma / sqrt(var + eps), beta - mean * that, and the raw state; embed.weight [in, out]."""
    t = {}
    for i, (c, n) in enumerate(zip(net.convs, net.norms)):
        t[f"conv{i}.weight"] = c.weight.detach().numpy().astype(np.float32)
        g, b = n.weight.detach().numpy(), n.bias.detach().numpy()
        m, v = n.running_mean.numpy(), n.running_var.numpy()
        scale = (g.astype(np.float64) / np.sqrt(v.astype(np.float64) + n.eps)).astype(np.float32)
        shift = (b - m * scale).astype(np.float32)
        t[f"bn{i}.gamma"], t[f"bn{i}.beta"] = scale, shift
        t[f"bn{i}.train_gamma"], t[f"bn{i}.train_beta"] = g.copy(), b.copy()
        t[f"bn{i}.running_mean"], t[f"bn{i}.running_var"] = m.copy(), v.copy()
    t["embed.weight"] = np.ascontiguousarray(net.embed.weight.detach().numpy().T)
    t["embed.bias"] = net.embed.bias.detach().numpy().copy()
    return {k: np.ascontiguousarray(v, dtype="<f4") for k, v in t.items()}


def model_id(prefix, tensors):
    """train_embedder.rs model_id: the SHA-256 of the values in name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(tensors[k].tobytes())
    return f"{prefix}-{h.hexdigest()[:16]}"


def write_model(path, tensors, descriptor, architecture, provenance):
    """A safetensors file with visage's metadata (TrainedModel::to_bytes, keys sorted)."""
    header, offset, blobs = {}, 0, []
    for k in sorted(tensors):
        b = tensors[k].tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {
        "architecture": json.dumps(architecture, separators=(",", ":")),
        "descriptor": json.dumps(descriptor, separators=(",", ":")),
        "format": "visage-model/1",
        "provenance": provenance,
    }
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def write_png(path, rgb):
    """A minimal 8-bit RGB PNG (for the export check through `visage embed --chip`)."""
    import zlib

    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def draw_lines(counts, p, k, seed, steps):
    """What bench/pytorch_scratch_view1_draws.rs prints, from the Python sampler and augmentation."""
    sampler, aug = PkSampler(list(counts), p, k, seed), SeededRng(seed ^ 0x5EED)
    chip = (np.arange(64 * 64 * 3) * 7 % 251).astype(np.uint8).reshape(64, 64, 3)
    h, out = 1469598103934665603, []
    for step in range(steps):
        for person, photo in sampler.next_batch():
            a = draw_augmentation(aug)
            if step < 2 or step + 1 == steps:
                out.append(f"{step} {person} {photo} {'true' if a[0] else 'false'} {a[1]} {a[2]} {a[3]:.17f} {a[4]:.17f}")
            if step < 50:
                for v in apply_augmentation(chip, a).reshape(-1).tolist():
                    h = ((h ^ v) * 1099511628211) & MASK
    out.append(f"hash {h}")
    rng, n = SeededRng(seed), 64
    labels = np.arange(n) // 4
    for batch in range(20):
        d = np.zeros((n, n), dtype=np.float32)
        for i in range(n):
            for j in range(i + 1, n):
                d[i, j] = d[j, i] = np.float32(rng.below(40)) * np.float32(0.025)
        for name in ("batch-hard", "batch-all", "semi-hard"):
            ap_idx, an_idx, c = mine(d, labels, 0.2, name)
            t = sorted(zip((ap_idx // n).tolist(), (ap_idx % n).tolist(), (an_idx % n).tolist()))
            h = 1469598103934665603
            for x in t:
                for v in x:
                    h = ((h ^ v) * 1099511628211) & MASK
            out.append(f"{name} {batch} {c} {len(t)} {h}")
    return out


def check_draws(binary, counts, a):
    """Compares the batches and augmentation draws with visage's own code (the program built
    from bench/pytorch_scratch_view1_draws.rs); exits non-zero when they differ."""
    import subprocess

    given = f"{a.p} {a.k} {a.seed} {a.steps}\n" + "".join(f"{c}\n" for c in counts)
    rust = subprocess.run([binary], input=given, capture_output=True, text=True, check=True).stdout.splitlines()
    python = draw_lines(counts, a.p, a.k, a.seed, a.steps)
    if rust != python:
        bad = next(i for i, (x, y) in enumerate(zip(rust + [""], python + [""])) if x != y)
        sys.exit(f"the draws differ from visage's at line {bad}: {rust[bad:bad + 1]} against {python[bad:bad + 1]}")
    print(f"batches, augmentation and mining identical to visage's: the rows of steps 1, 2 and {a.steps}, the 50 first steps' augmented chips, and the triplets of 20 test batches for each mining strategy ({len(python)} lines)")


def log_tail(path, n=100):
    """Means of the last n steps' loss, active fraction and positive / negative distances."""
    rows = [json.loads(l) for l in open(path)][-n:]
    return {k: sum(r[k] for r in rows) / len(rows) for k in ("loss", "active_fraction", "mean_positive", "mean_negative")}


def summarize(d, minings):
    """The side-by-side table from the driver's outputs in d (bench/pytorch_scratch_view1.sh)."""
    out = ["| mining | stack | pairsDevTest accuracy (10 folds) | AUC | EER | training loop | per step | command wall | last 100 steps: loss, active, d(a,p), d(a,n) | export check |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for m in minings:
        for stack in ("visage", "pytorch"):
            base = os.path.join(d, f"{stack}-{m}")
            try:
                t = json.load(open(base + ".train.json"))
                e = json.load(open(base + ".eval.json"))
            except (OSError, ValueError) as err:
                out.append(f"| {m} | {stack} | missing ({err}) |")
                continue
            wall = open(base + ".time").read().split()[-1] if os.path.exists(base + ".time") else "?"
            tail = log_tail(t["log"])
            check = "-"
            if os.path.exists(base + ".check.txt"):
                check = open(base + ".check.txt").read().strip()
            name = "visage (burn)" if stack == "visage" else f"PyTorch {t.get('torch', '')}"
            out.append(f"| {m} | {name} | {100 * e['accuracy_mean']:.2f}% ± {100 * e['accuracy_std']:.2f}% | {e['auc']:.4f} | {100 * e['eer']:.1f}% | "
                       f"{t['seconds']:.0f} s | {1000 * t['seconds'] / t['steps']:.0f} ms | {float(wall):.0f} s | "
                       f"{tail['loss']:.3f}, {tail['active_fraction']:.3f}, {tail['mean_positive']:.3g}, {tail['mean_negative']:.3g} | {check} |")
    return "\n".join(out)


def compare_check(model_check_dir, visage_jsonl):
    """The largest difference between visage's embeddings of the check chips (`visage --model
    FILE embed --chip`) and PyTorch's."""
    want = json.load(open(os.path.join(model_check_dir, "pytorch.json")))
    worst, n = 0.0, 0
    for l in open(visage_jsonl):
        r = json.loads(l)
        got = np.array(r["embedding"])
        worst = max(worst, float(np.abs(got - np.array(want[os.path.basename(r["path"])])).max()))
        n += 1
    if n != len(want):
        sys.exit(f"visage embedded {n} of the {len(want)} check chips")
    return f"{n} chips, max abs diff {worst:.1e}"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "summarize":
        print(summarize(sys.argv[2], sys.argv[3:]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "compare-check":
        print(compare_check(sys.argv[2], sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--people")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "visage", "chips"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--mining", default="batch-all", choices=["batch-all", "batch-hard", "semi-hard"])
    ap.add_argument("--channels", default="16,32,64,128")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--chip-size", type=int, default=64)
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--detector", default="hog")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--adam-eps", type=float, default=1e-5, help="burn's default; PyTorch's own is 1e-8")
    ap.add_argument("--seed", type=int, default=1, help="the batches and the augmentation (visage's draws)")
    ap.add_argument("--init-seed", type=int, default=1, help="torch.manual_seed for the initial weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check-draws", metavar="BIN", help="only compare the batches and augmentation with visage's (the program of bench/pytorch_scratch_view1_draws.rs), and exit")
    ap.add_argument("--check-chips", type=int, default=8, metavar="N", help="write N training chips as PNG and their PyTorch embeddings beside --out, for the export check")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.init_seed)
    channels = [int(c) for c in a.channels.split(",")]
    size = a.chip_size
    people, no_face = training_chips(a.images, a.people, a.cache, size, a.upsample, a.detector)
    counts = [len(p) for p in people]
    print(f"{len(people)} people, {sum(counts)} chips ({no_face} photos without a face)", file=sys.stderr)
    if a.check_draws:
        return check_draws(a.check_draws, counts, a)

    net = SmallCnn(channels, a.dim)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=a.adam_eps, weight_decay=0.0)
    sampler = PkSampler(counts, a.p, a.k, a.seed)
    aug_rng = SeededRng(a.seed ^ 0x5EED)
    log_path = os.path.splitext(a.out)[0] + ".log.jsonl"
    log = open(log_path, "w")
    history = []
    net.train()
    started = time.perf_counter()
    for step in range(a.steps):
        rows = sampler.next_batch()
        batch = [apply_augmentation(people[p][i], draw_augmentation(aug_rng)) for p, i in rows]
        labels = np.array([p for p, _ in rows])
        x = chips_tensor(batch)
        lr = cosine_lr(a.lr, step, a.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        dist = pairwise_squared(net(x))
        dv = dist.detach().numpy()
        ap_idx, an_idx, candidates = mine(dv, labels, a.margin, a.mining)
        if len(ap_idx) == 0:
            loss = dist.sum() * 0.0
            active = 0
        else:
            flat = dist.reshape(-1)
            hinge = F.relu(flat[torch.from_numpy(ap_idx)] - flat[torch.from_numpy(an_idx)] + a.margin)
            loss = hinge.mean()
            hv = dv.reshape(-1)[ap_idx] - dv.reshape(-1)[an_idx] + np.float32(a.margin)
            active = int((hv > 0).sum())
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        mp, mn = pair_means(dv, labels)
        frac = active / candidates if candidates else 0.0
        lv = float(loss.detach())
        log.write(json.dumps({"step": step + 1, "loss": lv, "active_fraction": frac, "mean_positive": mp, "mean_negative": mn, "lr": lr}) + "\n")
        history.append(lv)
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {lv:.4f}, active {100 * frac:.1f}%, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    seconds = time.perf_counter() - started
    log.close()

    # Thresholds on the training people, as train embedder chooses them (eval mode, no augmentation).
    net.eval()
    flat = [(i, c) for i, p in enumerate(people) for c in p]
    with torch.no_grad():
        emb = np.concatenate([net(chips_tensor([c for _, c in flat[s : s + 256]])).numpy() for s in range(0, len(flat), 256)])
    thresholds = training_thresholds([i for i, _ in flat], emb, a.seed)
    tensors = export_tensors(net, channels)
    mid = model_id("pytorch-cnn", tensors)
    descriptor = {
        "id": mid,
        "dim": a.dim,
        "chip": {"size": size, "padding": 0.25},
        "landmarks": "dlib5",
        "input": {"mean": [127.5, 127.5, 127.5], "scale": 0.0078125},
        "thresholds": thresholds,
    }
    provenance = json.dumps(
        {"command": " ".join(sys.argv), "trainer": f"bench/pytorch_scratch_view1.py, torch {torch.__version__}", "data": a.images, "people_list": a.people,
         "people": len(people), "chips": sum(counts), "photos_without_face": no_face, "loss": "triplet", "mining": a.mining, "margin": a.margin,
         "p": a.p, "k": a.k, "steps": a.steps, "lr": a.lr, "adam_eps": a.adam_eps, "seed": a.seed, "init_seed": a.init_seed},
        sort_keys=True, separators=(",", ":"))
    write_model(a.out, tensors, descriptor, {"channels": channels, "dim": a.dim}, provenance)

    if a.check_chips:
        # A few training chips and PyTorch's embeddings of them, for `visage embed --chip`.
        d = os.path.splitext(a.out)[0] + ".check"
        os.makedirs(d, exist_ok=True)
        step = max(1, len(flat) // a.check_chips)
        want = {}
        for j in range(a.check_chips):
            n = f"chip{j}.png"
            write_png(os.path.join(d, n), flat[j * step][1])
            want[n] = emb[j * step].tolist()
        json.dump(want, open(os.path.join(d, "pytorch.json"), "w"))

    last10 = history[-10:]
    print(json.dumps({"out": a.out, "model": mid, "people": len(people), "chips": sum(counts), "photos_without_face": no_face, "steps": a.steps,
                      "first_loss": history[0], "last_loss_mean10": sum(last10) / len(last10), "seconds": seconds, "threads": a.threads,
                      "thresholds": thresholds, "log": log_path, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
