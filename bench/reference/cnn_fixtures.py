"""Reference outputs of face_recognition with its CNN detector, for visage's CNN parity tests.

Usage: python cnn_fixtures.py ROOT OUT.json PHOTO...   (PHOTO paths relative to ROOT)
For each photo: face_locations(img, 1, model="cnn") as face_recognition returns them
(top, right, bottom, left, trimmed to the photo), dlib's raw mmod boxes and confidences, the
5-point landmarks dlib puts in those locations, and face_encodings(img, locations) (the
default model="small", num_jitters=1).
"""
import json
import os
import sys

import dlib
import face_recognition
import face_recognition_models


def main():
    root, out_path, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
    cnn = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    sp5 = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    out = {"generated_by": "bench/reference/cnn_fixtures.py", "dlib_version": dlib.__version__, "photos": []}
    for rel in photos:
        img = face_recognition.load_image_file(os.path.join(root, rel))
        raw = cnn(img, 1)
        locs = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="cnn")
        encs = face_recognition.face_encodings(img, locs)
        faces = []
        for m, loc, enc in zip(raw, locs, encs):
            top, right, bottom, left = loc
            shape = sp5(img, dlib.rectangle(left, top, right, bottom))
            faces.append({
                "raw_ltrb": [m.rect.left(), m.rect.top(), m.rect.right(), m.rect.bottom()],
                "confidence": float(m.confidence),
                "css": [top, right, bottom, left],
                "landmarks": [[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)],
                "encoding": [float(x) for x in enc],
            })
        out["photos"].append({"path": rel, "shape": list(img.shape), "faces": faces})
        print(rel, len(faces), file=sys.stderr, flush=True)
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
