//! `Visage` works through its stage traits alone: test-only stages (a detector that returns a
//! fixed box, a landmarker that returns fixed points, an embedder that averages colours) make
//! a pipeline whose answers are computed by hand here.

use visage::Thresholds;
use visage::{
    AlignedChip, ChipGeometry, Detection, DetectorSource, FaceChoice, FaceDetector, FaceEmbedder, HogDetector, ImageLimits,
    InputNormalization, LandmarkScheme, Landmarker, ModelDescriptor, Point, Rect, RgbImage, StageError, Visage, VisageError,
};

struct FixedBox(Rect);
impl FaceDetector for FixedBox {
    fn detect_adjusted(&self, _: &RgbImage, adjust: f64) -> Result<Vec<Detection>, StageError> {
        Ok(vec![Detection { rect: self.0, score: 1.0 - adjust, landmarks: None, source: DetectorSource { name: "fixed", sub: None } }])
    }
    fn name(&self) -> &'static str {
        "fixed"
    }
}

/// Five points at the template's positions inside the box (so the chip is the box, unrotated).
struct FixedPoints;
impl Landmarker for FixedPoints {
    fn landmarks(&self, _: &RgbImage, r: Rect) -> Result<Vec<Point>, StageError> {
        let (w, h) = ((r.right - r.left) as f64, (r.bottom - r.top) as f64);
        let at = |x: f64, y: f64| Point { x: r.left + (x * w) as i64, y: r.top + (y * h) as i64 };
        Ok(vec![at(0.8, 0.25), at(0.6, 0.25), at(0.2, 0.25), at(0.4, 0.25), at(0.5, 0.6)])
    }
    fn scheme(&self) -> LandmarkScheme {
        LandmarkScheme::Dlib5
    }
}

/// The mean R, G and B of the chip, in [0, 1].
struct MeanColour(ModelDescriptor);
impl FaceEmbedder for MeanColour {
    fn descriptor(&self) -> &ModelDescriptor {
        &self.0
    }
    fn embed(&self, chips: &[AlignedChip]) -> Result<Vec<Vec<f32>>, StageError> {
        Ok(chips
            .iter()
            .map(|c| {
                let mut m = [0f64; 3];
                for p in c.image().pixels() {
                    for (acc, &v) in m.iter_mut().zip(&p.0) {
                        *acc += v as f64;
                    }
                }
                let n = (c.image().width() * c.image().height()) as f64 * 255.0;
                m.iter().map(|v| (v / n) as f32).collect()
            })
            .collect())
    }
}

fn mean_colour() -> MeanColour {
    MeanColour(ModelDescriptor {
        id: "test-mean-colour".into(),
        dim: 3,
        chip: ChipGeometry { size: 32, padding: 0.0 },
        landmarks: LandmarkScheme::Dlib5,
        input: InputNormalization { mean: [0.0; 3], scale: 1.0 },
        thresholds: Thresholds { l2: 0.1, cosine: 0.01, chi2: 0.1 },
    })
}

#[test]
fn a_pipeline_of_test_stages_runs_through_the_traits() {
    let v =
        Visage::builder().detector(FixedBox(Rect::new(10, 10, 49, 49))).landmarker(FixedPoints).embedder(mean_colour()).build().unwrap();
    assert_eq!(v.descriptor().dim, 3);
    assert_eq!(v.descriptor().threshold(visage::Metric::L2), 0.1);
    // A photo that is pure red: every chip pixel is red, whatever the alignment.
    let img = RgbImage::from_pixel(64, 64, image::Rgb([255, 0, 0]));
    let faces = v.analyze(&img).unwrap();
    assert_eq!(faces.len(), 1);
    assert_eq!(faces[0].face.detector.name, "fixed");
    assert_eq!(faces[0].face.rect, Rect::new(10, 10, 49, 49));
    assert_eq!(faces[0].embedding, vec![1.0, 0.0, 0.0]);
    let chip = v.chip(&img, &faces[0].face).unwrap();
    assert_eq!((chip.image().width(), chip.geometry()), (32, v.descriptor().chip));
    // The lowered-threshold pass goes through the trait too.
    assert_eq!(v.find_faces_adjusted(&img, -1.0).unwrap()[0].score, 2.0);
    // Many photos, one shared batch, answers in photo order.
    let blue = RgbImage::from_pixel(64, 64, image::Rgb([0, 0, 255]));
    let many = v.analyze_many(&[&img, &blue]);
    assert_eq!(many[0].as_ref().unwrap()[0].embedding, vec![1.0, 0.0, 0.0]);
    assert_eq!(many[1].as_ref().unwrap()[0].embedding, vec![0.0, 0.0, 1.0]);
}

#[test]
fn a_builder_missing_a_stage_is_an_error() {
    let e = Visage::builder().detector(FixedBox(Rect::new(0, 0, 9, 9))).embedder(mean_colour()).build().err().unwrap();
    assert!(e.to_string().contains("landmarker"), "{e}");
}

#[test]
fn work_is_bounded_by_the_pixels_the_detector_processes() {
    // 2000x2000 is under a 5 MP limit, but upsampled once it is 16 MP: refused before any work.
    let limits = ImageLimits { max_pixels: 5_000_000, ..ImageLimits::DEFAULT };
    let v = Visage::builder()
        .detector(HogDetector::new().with_upsample(1))
        .landmarker(FixedPoints)
        .embedder(mean_colour())
        .limits(limits)
        .build()
        .unwrap();
    let big = RgbImage::new(2000, 2000);
    match v.find_faces(&big) {
        Err(VisageError::TooMuchWork { pixels, limit, .. }) => assert_eq!((pixels, limit), (16_000_000, 5_000_000)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let msg = v.find_faces(&big).unwrap_err().to_string();
    assert!(msg.contains("max-pixels") && msg.contains("upsample"), "{msg}");
    // The same photo at upsample 0 is within the limit.
    let v0 = Visage::builder()
        .detector(HogDetector::new().with_upsample(0))
        .landmarker(FixedPoints)
        .embedder(mean_colour())
        .limits(limits)
        .build()
        .unwrap();
    assert!(v0.find_faces(&big).unwrap().is_empty());
}

#[test]
fn face_choice_policies() {
    let v = Visage::builder().detector(FixedBox(Rect::new(0, 0, 9, 9))).landmarker(FixedPoints).embedder(mean_colour()).build().unwrap();
    let img = RgbImage::new(100, 100);
    let mk = |r: Rect| v.face_at(&img, r).unwrap();
    let faces = vec![mk(Rect::new(0, 0, 19, 19)), mk(Rect::new(40, 40, 59, 59)), mk(Rect::new(60, 0, 99, 39))];
    assert_eq!(FaceChoice::Largest.pick(&faces, 100, 100), Some(2));
    assert_eq!(FaceChoice::NearestCentre.pick(&faces, 100, 100), Some(1));
    assert_eq!(FaceChoice::Index(0).pick(&faces, 100, 100), Some(0));
    assert_eq!(FaceChoice::Index(3).pick(&faces, 100, 100), None);
    // Ties: the earlier (more confident) face.
    let twins = vec![mk(Rect::new(0, 0, 9, 9)), mk(Rect::new(91, 91, 100, 100))];
    assert_eq!(FaceChoice::Largest.pick(&twins, 100, 100), Some(0));
    assert_eq!(FaceChoice::NearestCentre.pick(&twins, 100, 100), Some(0));
    assert_eq!(FaceChoice::Largest.pick(&[], 100, 100), None);
}
