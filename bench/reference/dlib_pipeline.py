"""Times dlib / face_recognition on photos, for visage's side-by-side pipeline benchmark.

Usage: python dlib_pipeline.py REPEATS DETECT_PHOTO... -- PIPELINE_PHOTO...
Prints one JSON object:
  detect: {photo: {"0": median s, "1": median s}}   dlib.get_frontal_face_detector()(img, upsample)
  pipeline_s: median seconds for face_locations + face_encodings over all pipeline photos
  pipeline_faces: faces found in one pass
Decoding is excluded (images are loaded first). dlib runs single-threaded.
"""
import json
import statistics
import sys
import time

import dlib
import face_recognition


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    repeats = int(sys.argv[1])
    args = sys.argv[2:]
    split = args.index("--")
    detect_photos, pipeline_photos = args[:split], args[split + 1:]
    det = dlib.get_frontal_face_detector()
    out = {"dlib_version": dlib.__version__, "detect": {}}
    for p in detect_photos:
        img = face_recognition.load_image_file(p)
        det(img, 0)
        out["detect"][p] = {str(up): median_time(lambda: det(img, up), repeats) for up in (0, 1)}
    imgs = [face_recognition.load_image_file(p) for p in pipeline_photos]

    def pipeline():
        n = 0
        for img in imgs:
            locs = face_recognition.face_locations(img, number_of_times_to_upsample=1)
            n += len(face_recognition.face_encodings(img, locs))
        return n

    out["pipeline_faces"] = pipeline()
    out["pipeline_s"] = median_time(pipeline, max(1, repeats // 3))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
