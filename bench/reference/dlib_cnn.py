"""Times dlib's CNN (MMOD) face detector, for visage's side-by-side detector benchmark.

Usage: python dlib_cnn.py PHOTO:UPSAMPLE...
Prints one JSON object: {"dlib_version": ..., "cnn": {"PHOTO:UPSAMPLE": {"s": seconds, "faces": n}}}.
One run each (dlib takes tens of seconds per photo on a CPU); decoding is excluded.
"""
import json
import sys
import time

import dlib
import face_recognition
import face_recognition_models


def main():
    det = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    out = {"dlib_version": dlib.__version__, "cnn": {}}
    for arg in sys.argv[1:]:
        path, up = arg.rsplit(":", 1)
        img = face_recognition.load_image_file(path)
        t = time.perf_counter()
        faces = det(img, int(up))
        out["cnn"][arg] = {"s": time.perf_counter() - t, "faces": len(faces)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
