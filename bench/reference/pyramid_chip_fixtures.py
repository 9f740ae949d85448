"""Generates crates/visage-align/tests/dlib_pyramid_chips.in: dlib chips of faces large enough
to need extract_image_chip's image pyramid.

The oracle photos are enlarged by pixel replication (identical in numpy and in the Rust test),
dlib's 5-point predictor runs on the enlarged oracle box, and get_face_chip cuts the chip. Only
the landmarks and a 64-bit FNV-1a checksum of each chip are written (no face pixels).
Usage: python pyramid_chip_fixtures.py SHARED_DIR > crates/visage-align/tests/dlib_pyramid_chips.in
"""
import json
import sys

import numpy as np
import dlib
import face_recognition
import face_recognition.api as api


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    shared = sys.argv[1]
    cases = [("Tom_Hanks_54745.png", 5), ("Tom_Hanks_54745.png", 13), ("t1.jpg", 2), ("t1.jpg", 3), ("sample2.jpg", 3)]
    print("// (image, scale, face, landmarks5, fnv1a of dlib's 150x150 chip) -- bench/reference/pyramid_chip_fixtures.py")
    print("[")
    for name, k in cases:
        img = face_recognition.load_image_file(f"{shared}/oracle/images/{name}")
        big = np.ascontiguousarray(np.repeat(np.repeat(img, k, axis=0), k, axis=1))
        meta = json.load(open(f"{shared}/oracle/dlib/{name.rsplit('.', 1)[0]}.json"))
        for i, f in enumerate(meta["faces"][:2]):
            l, t, r, b = f["box_ltrb"]
            rect = dlib.rectangle(l * k, t * k, r * k, b * k)
            shape = api.pose_predictor_5_point(big, rect)
            chip = dlib.get_face_chip(big, shape, size=150, padding=0.25)
            pts = ", ".join(f"({p.x}, {p.y})" for p in shape.parts())
            print(f'    ("{name}", {k}, {i}, [{pts}], 0x{fnv1a(chip.tobytes()):016x}),')
    print("]")


if __name__ == "__main__":
    main()
