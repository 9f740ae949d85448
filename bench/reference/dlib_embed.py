"""Times dlib's face descriptor on aligned chips, for visage's side-by-side benchmark.

Usage: python dlib_embed.py REPEATS CHIP.png...
Prints one JSON object: median seconds per face for
  face_encodings_b1   face_recognition.face_encodings(chip, [whole chip]) one chip at a time
  descriptor_b1       dlib compute_face_descriptor(chip) one chip at a time
  descriptor_b32      dlib compute_face_descriptor([32 chips]) (dlib's batch API)
dlib's CPU path is single-threaded.
"""
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image
import face_recognition
import face_recognition.api as api


def median_per_face(fn, n_faces, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) / n_faces)
    return statistics.median(times)


def main():
    repeats = int(sys.argv[1])
    chips = [np.asarray(Image.open(p).convert("RGB")) for p in sys.argv[2:]]
    enc = api.face_encoder
    enc.compute_face_descriptor(chips[0])  # warm-up
    whole = [(0, 150, 150, 0)]
    batch = (chips * (32 // len(chips) + 1))[:32]
    out = {
        "dlib_version": __import__("dlib").__version__,
        "face_encodings_b1": median_per_face(
            lambda: [face_recognition.face_encodings(c, whole) for c in chips], len(chips), repeats),
        "descriptor_b1": median_per_face(
            lambda: [enc.compute_face_descriptor(c) for c in chips], len(chips), repeats),
        "descriptor_b32": median_per_face(lambda: enc.compute_face_descriptor(batch), 32, repeats),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
