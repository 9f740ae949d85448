"""face_recognition's API on visage: ``import visage.compat as face_recognition``.

Every function has face_recognition 1.3's name, arguments, defaults and return types, and
returns the same values: the same boxes (dlib's HOG detector, or its CNN detector with
``model="cnn"``), the same landmarks (dlib's 68- and 5-point shape predictors) and the same
128-d encodings (dlib's ResNet), computed by visage's Rust code instead of dlib.

Differences, all outside what face_recognition's tests and users rely on:

* ``face_encodings(..., num_jitters=N)`` with N > 1 averages N jittered chips as dlib does, but
  with visage's seeded random generator: repeatable from call to call (dlib's answer depends on
  every earlier jittered call in the process), not equal to dlib's draws.
* Grey (H x W) arrays are accepted by ``face_encodings`` too (dlib only takes RGB there).
* ``load_image_file`` decodes JPEG, PNG and WebP itself (PIL is needed only for modes other
  than ``"RGB"`` and ``"L"`` and for other formats).

The models load on first use (``VISAGE_MODELS`` or ``~/.local/share/visage/models``; see
:func:`visage.fetch_models`). The functions release the GIL while they work, so threads run
them in parallel.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native

__all__ = [
    "load_image_file",
    "face_locations",
    "batch_face_locations",
    "face_landmarks",
    "face_encodings",
    "compare_faces",
    "face_distance",
]

Location = Tuple[int, int, int, int]

_engine_lock = threading.Lock()
_engine: Optional[_native.Engine] = None


def _get_engine() -> _native.Engine:
    """The models shared by every function of this module, loaded once."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = _native.Engine()
    return _engine


def _rect_to_css(rect: Sequence[int]) -> Location:
    """(left, top, right, bottom) -> face_recognition's (top, right, bottom, left)."""
    left, top, right, bottom = rect[0], rect[1], rect[2], rect[3]
    return (top, right, bottom, left)


def _css_to_rect(css: Sequence[int]) -> Tuple[int, int, int, int]:
    """(top, right, bottom, left) -> (left, top, right, bottom), as dlib.rectangle takes them."""
    return (int(css[3]), int(css[0]), int(css[1]), int(css[2]))


def _trim_css_to_bounds(css: Location, image_shape: Sequence[int]) -> Location:
    """Keeps a (top, right, bottom, left) box inside the image, as face_recognition does
    (right and bottom are clamped to the width and height, not to the last pixel)."""
    return (max(css[0], 0), min(css[1], image_shape[1]), min(css[2], image_shape[0]), max(css[3], 0))


def _raw_face_locations(img: np.ndarray, number_of_times_to_upsample: int = 1, model: str = "hog") -> List[Tuple[int, int, int, int]]:
    """Untrimmed (left, top, right, bottom) boxes, most confident first."""
    dets = _get_engine().detect_raw(img, int(number_of_times_to_upsample), model == "cnn")
    return [d[:4] for d in dets]


def _raw_face_landmarks(face_image: np.ndarray, face_locations: Optional[Iterable[Location]] = None, model: str = "large"):
    if face_locations is None:
        rects = _raw_face_locations(face_image)
    else:
        rects = [_css_to_rect(loc) for loc in face_locations]
    return rects, model != "small"


def load_image_file(file: Union[str, "os.PathLike[str]", Any], mode: str = "RGB") -> np.ndarray:
    """Loads an image file (a path or a file object) into a numpy array.

    :param file: image file name or file object to load
    :param mode: format to convert the image to. ``"RGB"`` (8-bit RGB, 3 channels) and ``"L"``
        (black and white) are decoded by visage; other PIL modes need Pillow.
    :return: image contents as a uint8 numpy array (H x W x 3 for RGB, H x W for L)

    As with face_recognition (PIL), the pixels are returned as stored: an EXIF orientation
    tag is not applied.
    """
    if hasattr(file, "read"):
        data = file.read()
        name = getattr(file, "name", "photo")
    else:
        name = os.fspath(file)
        with open(name, "rb") as f:
            data = f.read()
    if mode not in ("RGB", "L"):
        return _pil_load(data, mode)
    try:
        img = _native.decode(bytes(data), str(name), False)
    except _native.BadPhotoError:
        # Formats visage does not decode (BMP, GIF, TIFF, ...): PIL, when it is installed.
        try:
            return _pil_load(data, mode)
        except ImportError:
            raise
    if mode == "L":
        # PIL's ITU-R 601-2 luma, in its fixed-point form.
        rgb = img.astype(np.uint32)
        img = ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16).astype(np.uint8)
    return img


def _pil_load(data: bytes, mode: str) -> np.ndarray:
    import io

    import PIL.Image  # only for modes and formats visage does not handle itself

    im = PIL.Image.open(io.BytesIO(data))
    if mode:
        im = im.convert(mode)
    return np.array(im)


def face_locations(img: np.ndarray, number_of_times_to_upsample: int = 1, model: str = "hog") -> List[Location]:
    """Returns an array of bounding boxes of human faces in an image.

    :param img: an image (as a numpy array)
    :param number_of_times_to_upsample: how many times to upsample the image looking for
        faces. Higher numbers find smaller faces.
    :param model: which face detection model to use. ``"hog"`` is less accurate but faster
        on CPUs. ``"cnn"`` is a more accurate deep-learning model (dlib's MMOD detector).
    :return: a list of tuples of found face locations in css (top, right, bottom, left) order
    """
    if model == "cnn":
        return [_trim_css_to_bounds(_rect_to_css(r), img.shape) for r in _raw_face_locations(img, number_of_times_to_upsample, "cnn")]
    return [_trim_css_to_bounds(_rect_to_css(r), img.shape) for r in _raw_face_locations(img, number_of_times_to_upsample, model)]


def batch_face_locations(images: Sequence[np.ndarray], number_of_times_to_upsample: int = 1, batch_size: int = 128) -> List[List[Location]]:
    """Returns a 2d array of bounding boxes of human faces in images using the cnn face
    detector. The images are processed in parallel on the CPU's cores (face_recognition
    batches them on a GPU).

    :param images: a list of images (each as a numpy array)
    :param number_of_times_to_upsample: how many times to upsample the image looking for faces.
    :param batch_size: how many images to include in each batch (kept for compatibility).
    :return: a list of lists of found face locations in css (top, right, bottom, left) order
    """
    images = list(images)
    if not images:
        return []
    shape = images[0].shape
    out: List[List[Location]] = []
    step = max(int(batch_size), 1)
    for start in range(0, len(images), step):
        raw = _get_engine().detect_raw_batch(images[start:start + step], int(number_of_times_to_upsample), True)
        out.extend([_trim_css_to_bounds(_rect_to_css(d[:4]), shape) for d in dets] for dets in raw)
    return out


def face_landmarks(face_image: np.ndarray, face_locations: Optional[Iterable[Location]] = None, model: str = "large") -> List[Dict[str, List[Tuple[int, int]]]]:
    """Given an image, returns a dict of face feature locations (eyes, nose, etc) for each
    face in the image.

    :param face_image: image to search
    :param face_locations: optionally provide a list of face locations to check.
    :param model: optional - which model to use. ``"large"`` (default) or ``"small"`` which
        only returns 5 points but is faster.
    :return: a list of dicts of face feature locations (eyes, nose, etc)
    """
    rects, large = _raw_face_landmarks(face_image, face_locations, model)
    if model not in ("large", "small"):
        raise ValueError("Invalid landmarks model type. Supported models are ['small', 'large'].")
    landmarks = _get_engine().landmarks_raw(face_image, rects, large)
    if model == "large":
        return [
            {
                "chin": p[0:17],
                "left_eyebrow": p[17:22],
                "right_eyebrow": p[22:27],
                "nose_bridge": p[27:31],
                "nose_tip": p[31:36],
                "left_eye": p[36:42],
                "right_eye": p[42:48],
                "top_lip": p[48:55] + [p[64], p[63], p[62], p[61], p[60]],
                "bottom_lip": p[54:60] + [p[48], p[60], p[67], p[66], p[65], p[64]],
            }
            for p in landmarks
        ]
    return [{"nose_tip": [p[4]], "left_eye": p[2:4], "right_eye": p[0:2]} for p in landmarks]


def face_encodings(face_image: np.ndarray, known_face_locations: Optional[Iterable[Location]] = None, num_jitters: int = 1, model: str = "small") -> List[np.ndarray]:
    """Given an image, return the 128-dimension face encoding for each face in the image.

    :param face_image: the image that contains one or more faces
    :param known_face_locations: optional - the bounding boxes of each face if you already
        know them.
    :param num_jitters: how many times to re-sample the face when calculating encoding.
        Higher is more accurate, but slower (i.e. 100 is 100x slower)
    :param model: optional - which model to use. ``"large"`` or ``"small"`` (default) which
        only returns 5 points but is faster.
    :return: a list of 128-dimensional face encodings (one float64 array per face)
    """
    rects, large = _raw_face_landmarks(face_image, known_face_locations, model)
    if not rects:
        return []
    enc = _get_engine().encode_raw(face_image, rects, int(num_jitters), large)
    return [row.copy() for row in enc]


def face_distance(face_encodings: Sequence[np.ndarray], face_to_compare: np.ndarray) -> np.ndarray:
    """Given a list of face encodings, compare them to a known face encoding and get a
    euclidean distance for each comparison face. The distance tells you how similar the faces
    are.

    :param face_encodings: list of face encodings to compare
    :param face_to_compare: a face encoding to compare against
    :return: a numpy ndarray with the distance for each face in the same order as the
        'faces' array
    """
    if len(face_encodings) == 0:
        return np.empty((0))
    return np.linalg.norm(np.asarray(face_encodings) - face_to_compare, axis=1)


def compare_faces(known_face_encodings: Sequence[np.ndarray], face_encoding_to_check: np.ndarray, tolerance: float = 0.6) -> List[bool]:
    """Compare a list of face encodings against a candidate encoding to see if they match.

    :param known_face_encodings: a list of known face encodings
    :param face_encoding_to_check: a single face encoding to compare against the list
    :param tolerance: how much distance between faces to consider it a match. Lower is more
        strict. 0.6 is typical best performance.
    :return: a list of True/False values indicating which known_face_encodings match the face
        encoding to check
    """
    return list(face_distance(known_face_encodings, face_encoding_to_check) <= tolerance)
