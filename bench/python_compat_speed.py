#!/usr/bin/env python3
"""face_recognition against visage.compat on a folder of photos, in the same process and run.

    python bench/python_compat_speed.py [FOLDER] [--rounds N] [--upsample N]

Each round runs the usual face_recognition loop over every photo -- load_image_file,
face_locations, face_encodings(img, locations) -- once with ``import face_recognition`` and
once with ``import visage.compat as face_recognition``, alternating which goes first. It checks
that both found the same boxes and encodings within 1e-6, then prints the best round of each
and the ratio. Needs both packages installed (scripts/test.d/20-python.sh makes such a venv).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def one_pass(fr, paths, upsample):
    t = time.perf_counter()
    out = []
    for p in paths:
        img = fr.load_image_file(str(p))
        locs = fr.face_locations(img, number_of_times_to_upsample=upsample)
        out.append((locs, fr.face_encodings(img, locs)))
    return time.perf_counter() - t, out


def main():
    here = Path(__file__).resolve().parent
    default = Path(os.environ.get("VISAGE_SHARED") or here.parent.parent / "shared") / "oracle" / "images"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(default))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--upsample", type=int, default=1)
    a = ap.parse_args()
    paths = sorted(p for p in Path(a.folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        sys.exit(f"no photos in {a.folder}")

    import face_recognition

    import visage.compat as vc

    vc._get_engine()  # models loaded before timing, as face_recognition loads them at import
    libs = {"face_recognition": face_recognition, "visage.compat": vc}
    best = {k: float("inf") for k in libs}
    results = {}
    for r in range(a.rounds):
        order = list(libs) if r % 2 == 0 else list(libs)[::-1]
        for name in order:
            dt, out = one_pass(libs[name], paths, a.upsample)
            best[name] = min(best[name], dt)
            results[name] = out
    faces = sum(len(l) for l, _ in results["face_recognition"])
    for (l1, e1), (l2, e2) in zip(results["face_recognition"], results["visage.compat"]):
        assert l1 == l2, "different boxes"
        assert all(float(np.abs(x - y).max()) <= 1e-6 for x, y in zip(e1, e2)), "different encodings"
    cores = os.cpu_count()
    print(f"{len(paths)} photos, {faces} faces, upsample {a.upsample}, best of {a.rounds} rounds, {cores} cores; identical boxes, encodings within 1e-6")
    for name in libs:
        print(f"  {name:<17} {best[name]:7.3f} s  ({faces / best[name]:6.1f} faces/s)")
    print(f"ratio: visage.compat is {best['face_recognition'] / best['visage.compat']:.2f}x face_recognition")


if __name__ == "__main__":
    main()
