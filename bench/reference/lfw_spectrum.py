"""Derives the spread of real dlib embeddings for the gallery search benchmark's synthetic data.

Reads visage's evaluation cache (run `visage eval identify --images LFW/images` first) and
LFW's image folder, and prints, for people with 2+ photos:
  * the 128 principal standard deviations of the per-person mean embeddings (sorted), and
  * the within-person standard deviation per dimension (isotropic average),
as Rust constants for crates/visage-gallery/benches/search.rs.
Usage: python lfw_spectrum.py CACHE_FILE LFW_IMAGES
"""
import hashlib
import os
import sys
from collections import defaultdict

import numpy as np


def main():
    cache, images = sys.argv[1], sys.argv[2]
    raw = open(cache, "rb").read()
    rec = 33 + 4 * 128
    emb = {}
    for i in range(len(raw) // rec):
        r = raw[i * rec:(i + 1) * rec]
        emb[r[:32]] = np.frombuffer(r[33:], dtype="<f4")
    people = defaultdict(list)
    for name in sorted(os.listdir(images)):
        for f in sorted(os.listdir(os.path.join(images, name))):
            key = hashlib.sha256(open(os.path.join(images, name, f), "rb").read()).digest()
            if key in emb:
                people[name].append(emb[key])
    means, within = [], []
    for name, e in people.items():
        if len(e) >= 2:
            e = np.array(e)
            means.append(e.mean(axis=0))
            within.append(e - e.mean(axis=0))
    means = np.array(means)
    within = np.concatenate(within)
    cov = np.cov(means.T)
    sd = np.sqrt(np.clip(np.sort(np.linalg.eigvalsh(cov))[::-1], 0, None))
    w = float(np.sqrt((within ** 2).mean()))
    print(f"// {len(means)} LFW people with 2+ photos; per-person means' principal standard deviations.")
    print("const BETWEEN_SD: [f32; 128] = [")
    for i in range(0, 128, 8):
        print("    " + ", ".join(f"{x:.5}" for x in sd[i:i + 8]) + ",")
    print("];")
    print(f"// Within-person standard deviation per dimension (pooled).\nconst WITHIN_SD: f32 = {w:.5};")
    print(f"// norm of the mean embedding: {np.linalg.norm(means.mean(axis=0)):.4f}")


if __name__ == "__main__":
    main()
