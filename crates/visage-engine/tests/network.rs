//! Networks built from the layer vocabulary against a plain NCHW reference written from the
//! layers' definitions (f64 accumulation), on every kernel this CPU runs.

use visage_core::SeededRng;
use visage_engine::{EngineError, EngineOptions, Isa, Layer, Network, Tensor, Weights};

/// One image, CHW.
#[derive(Clone, Debug)]
struct Chw {
    c: usize,
    h: usize,
    w: usize,
    v: Vec<f64>,
}

impl Chw {
    fn at(&self, c: usize, y: isize, x: isize) -> Option<f64> {
        (c < self.c && y >= 0 && x >= 0 && (y as usize) < self.h && (x as usize) < self.w)
            .then(|| self.v[(c * self.h + y as usize) * self.w + x as usize])
    }
}

fn reference(layers: &[Layer], w: &Weights, x: Chw) -> Chw {
    let mut x = x;
    for l in layers {
        x = match l {
            Layer::Conv { name, stride, pad } => {
                let f = w.get(&format!("{name}.weight")).unwrap();
                let (o, k) = (f.shape[0], f.shape[2]);
                let b = w.get(&format!("{name}.bias"));
                let oh = (x.h + 2 * pad - k) / stride + 1;
                let ow = (x.w + 2 * pad - k) / stride + 1;
                let mut v = vec![0.0; o * oh * ow];
                for oc in 0..o {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = b.map_or(0.0, |b| b.data[oc] as f64);
                            for ic in 0..x.c {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let iy = (oy * stride + ky) as isize - *pad as isize;
                                        let ix = (ox * stride + kx) as isize - *pad as isize;
                                        if let Some(val) = x.at(ic, iy, ix) {
                                            acc += val * f.data[((oc * x.c + ic) * k + ky) * k + kx] as f64;
                                        }
                                    }
                                }
                            }
                            v[(oc * oh + oy) * ow + ox] = acc;
                        }
                    }
                }
                Chw { c: o, h: oh, w: ow, v }
            }
            Layer::LocallyConnected { name, stride } => {
                let f = w.get(&format!("{name}.weight")).unwrap();
                let [oh, ow, k, _, ci, o] = f.shape[..] else { panic!("{name}: shape {:?}", f.shape) };
                assert_eq!(ci, x.c);
                let b = w.get(&format!("{name}.bias"));
                let mut v = vec![0.0; o * oh * ow];
                for oc in 0..o {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = b.map_or(0.0, |b| b.data[(oy * ow + ox) * o + oc] as f64);
                            for ky in 0..k {
                                for kx in 0..k {
                                    for ic in 0..ci {
                                        let val = x.at(ic, (oy * stride + ky) as isize, (ox * stride + kx) as isize).expect("inside");
                                        acc += val * f.data[((((oy * ow + ox) * k + ky) * k + kx) * ci + ic) * o + oc] as f64;
                                    }
                                }
                            }
                            v[(oc * oh + oy) * ow + ox] = acc;
                        }
                    }
                }
                Chw { c: o, h: oh, w: ow, v }
            }
            Layer::Affine { name } => {
                let g = &w.get(&format!("{name}.gamma")).unwrap().data;
                let b = &w.get(&format!("{name}.beta")).unwrap().data;
                let hw = x.h * x.w;
                let v = x.v.iter().enumerate().map(|(i, &val)| g[i / hw] as f64 * val + b[i / hw] as f64).collect();
                Chw { v, ..x }
            }
            Layer::Relu => Chw { v: x.v.iter().map(|v| v.max(0.0)).collect(), ..x },
            Layer::MaxPool { size, stride, pad } => pool(&x, *size, *stride, *pad, true),
            Layer::AvgPool { size, stride } => pool(&x, *size, *stride, 0, false),
            Layer::GlobalAvgPool => {
                let hw = (x.h * x.w) as f64;
                Chw { c: x.c, h: 1, w: 1, v: x.v.chunks(x.h * x.w).map(|p| p.iter().sum::<f64>() / hw).collect() }
            }
            Layer::FullyConnected { name } => {
                let f = w.get(&format!("{name}.weight")).unwrap();
                let outs = f.shape[1];
                let b = w.get(&format!("{name}.bias"));
                let v = (0..outs)
                    .map(|o| {
                        b.map_or(0.0, |b| b.data[o] as f64)
                            + x.v.iter().enumerate().map(|(i, &val)| val * f.data[i * outs + o] as f64).sum::<f64>()
                    })
                    .collect();
                Chw { c: outs, h: 1, w: 1, v }
            }
            Layer::Residual { main, skip } => {
                let m = reference(main, w, x.clone());
                let s = reference(skip, w, x);
                let (c, h, wd) = (m.c.max(s.c), m.h.max(s.h), m.w.max(s.w));
                let mut v = vec![0.0; c * h * wd];
                for ch in 0..c {
                    for y in 0..h {
                        for xx in 0..wd {
                            v[(ch * h + y) * wd + xx] =
                                m.at(ch, y as isize, xx as isize).unwrap_or(0.0) + s.at(ch, y as isize, xx as isize).unwrap_or(0.0);
                        }
                    }
                }
                Chw { c, h, w: wd, v }
            }
        };
    }
    x
}

fn pool(x: &Chw, size: usize, stride: usize, pad: usize, max: bool) -> Chw {
    let oh = (x.h + 2 * pad - size) / stride + 1;
    let ow = (x.w + 2 * pad - size) / stride + 1;
    let mut v = Vec::with_capacity(x.c * oh * ow);
    for c in 0..x.c {
        for oy in 0..oh {
            for ox in 0..ow {
                let vals: Vec<f64> = (0..size * size)
                    .filter_map(|i| {
                        x.at(c, (oy * stride + i / size) as isize - pad as isize, (ox * stride + i % size) as isize - pad as isize)
                    })
                    .collect();
                v.push(if max {
                    vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                } else {
                    vals.iter().sum::<f64>() / (size * size) as f64
                });
            }
        }
    }
    Chw { c: x.c, h: oh, w: ow, v }
}

fn tensor(rng: &mut SeededRng, shape: &[usize]) -> Tensor {
    Tensor::new(shape.to_vec(), (0..shape.iter().product()).map(|_| rng.centered()).collect()).unwrap()
}

fn conv(w: &mut Weights, rng: &mut SeededRng, name: &str, o: usize, i: usize, k: usize, bias: bool) {
    w.insert(format!("{name}.weight"), tensor(rng, &[o, i, k, k]));
    if bias {
        w.insert(format!("{name}.bias"), tensor(rng, &[o]));
    }
}

fn affine(w: &mut Weights, rng: &mut SeededRng, name: &str, c: usize) {
    let g = Tensor::new(vec![c], (0..c).map(|_| 1.0 + rng.centered()).collect()).unwrap();
    w.insert(format!("{name}.gamma"), g);
    w.insert(format!("{name}.beta"), tensor(rng, &[c]));
}

/// A network touching every layer and every fusion rule.
fn every_layer(rng: &mut SeededRng) -> (Vec<Layer>, Weights) {
    let mut w = Weights::new();
    conv(&mut w, rng, "c0", 8, 3, 5, true); // 5x5 stride 2, bias, no affine
    conv(&mut w, rng, "b0.c1", 8, 8, 3, false);
    affine(&mut w, rng, "b0.a1", 8);
    conv(&mut w, rng, "b0.c2", 8, 8, 3, true);
    affine(&mut w, rng, "b0.a2", 8);
    conv(&mut w, rng, "b1.c1", 12, 8, 3, true); // down block: stride 2, pooled skip, 8 -> 12
    conv(&mut w, rng, "b1.c2", 12, 12, 3, true);
    conv(&mut w, rng, "b2.c", 16, 12, 1, true); // skip with a 1x1 conv: general add_prev
    affine(&mut w, rng, "free", 16);
    conv(&mut w, rng, "b3.c", 16, 16, 3, true); // a branch starting with relu (copies the input)
    w.insert("fc.weight", tensor(rng, &[16 * 2 * 2, 10]));
    w.insert("fc.bias", tensor(rng, &[10]));
    let layers = vec![
        Layer::conv("c0", 2, 1),
        Layer::MaxPool { size: 3, stride: 1, pad: 1 },
        Layer::Residual {
            main: vec![Layer::conv("b0.c1", 1, 1), Layer::affine("b0.a1"), Layer::Relu, Layer::conv("b0.c2", 1, 1), Layer::affine("b0.a2")],
            skip: vec![],
        },
        Layer::Relu,
        Layer::Residual {
            main: vec![Layer::conv("b1.c1", 2, 0), Layer::Relu, Layer::conv("b1.c2", 1, 1)],
            skip: vec![Layer::AvgPool { size: 2, stride: 2 }],
        },
        Layer::Relu,
        Layer::Residual { main: vec![Layer::conv("b2.c", 1, 0)], skip: vec![Layer::MaxPool { size: 1, stride: 1, pad: 0 }] },
        Layer::affine("free"),
        Layer::Residual { main: vec![Layer::Relu, Layer::conv("b3.c", 1, 1)], skip: vec![] },
        Layer::AvgPool { size: 2, stride: 2 },
        Layer::fc("fc"),
    ];
    (layers, w)
}

fn run_both(layers: &[Layer], w: &Weights, n: usize, h: usize, wd: usize, opts: EngineOptions, rng: &mut SeededRng) -> f64 {
    let net = Network::new(3, layers, w, opts).unwrap();
    let mut ws = net.workspace(n, h, wd).unwrap();
    let x: Vec<f32> = (0..n * h * wd * 3).map(|_| rng.centered()).collect();
    ws.input_mut().copy_from_slice(&x);
    let got = net.run(&mut ws);
    let (mut worst, mut scale) = (0f64, 0f64);
    for (img, out) in got.iter().enumerate() {
        let chw =
            Chw { c: 3, h, w: wd, v: (0..3 * h * wd).map(|i| x[img * h * wd * 3 + (i % (h * wd)) * 3 + i / (h * wd)] as f64).collect() };
        let want = reference(layers, w, chw);
        let os = ws.output_shape();
        assert_eq!((os.c, os.h, os.w), (want.c, want.h, want.w));
        assert_eq!(out.len(), want.v.len());
        assert_eq!(got.len(), n);
        // `out` is HWC; the reference CHW.
        for (i, &v) in out.iter().enumerate() {
            let (p, c) = (i / want.c, i % want.c);
            let w = want.v[c * want.h * want.w + p];
            worst = worst.max((v as f64 - w).abs());
            scale = scale.max(w.abs());
        }
    }
    // Relative to the largest output, so that no error hides behind small values.
    worst / scale.max(1e-12)
}

#[test]
fn every_layer_and_fusion_matches_the_reference() {
    let mut rng = SeededRng::new(3);
    let (layers, w) = every_layer(&mut rng);
    for isa in Isa::supported() {
        for winograd in [false, true] {
            // 17x17 -> 9x9 (c0) -> 9x9 -> 4x4 (b1) ... -> 2x2 -> fc; batch 5 makes Winograd pay.
            let d = run_both(&layers, &w, 5, 17, 17, EngineOptions { isa, winograd }, &mut rng);
            assert!(d < 1e-5, "{isa:?} winograd {winograd}: relative max diff {d:e}");
            eprintln!("{isa:?} winograd {winograd}: relative max diff {d:e}");
        }
    }
}

#[test]
fn global_pooling_and_projection_fuse() {
    let mut rng = SeededRng::new(5);
    let mut w = Weights::new();
    conv(&mut w, &mut rng, "c", 6, 3, 3, true);
    w.insert("fc.weight", tensor(&mut rng, &[6, 4]));
    let layers = vec![Layer::conv("c", 1, 1), Layer::Relu, Layer::GlobalAvgPool, Layer::fc("fc")];
    let d = run_both(&layers, &w, 3, 7, 5, EngineOptions::default(), &mut rng);
    assert!(d < 1e-5, "relative max diff {d:e}");
    let unfused = vec![Layer::conv("c", 1, 1), Layer::Relu, Layer::GlobalAvgPool, Layer::Relu, Layer::fc("fc")];
    let d = run_both(&unfused, &w, 2, 6, 6, EngineOptions::default(), &mut rng);
    assert!(d < 1e-5, "relative max diff {d:e}");
}

#[test]
fn bad_weights_and_inputs_are_errors_not_panics() {
    let mut rng = SeededRng::new(9);
    let mut w = Weights::new();
    conv(&mut w, &mut rng, "c", 4, 3, 3, true);
    let opts = EngineOptions::default();
    let e = Network::new(3, &[Layer::conv("missing", 1, 1)], &w, opts).err().unwrap();
    assert!(matches!(e, EngineError::MissingWeight(ref n) if n == "missing.weight"), "{e}");
    let e = Network::new(5, &[Layer::conv("c", 1, 1)], &w, opts).err().unwrap();
    assert!(matches!(e, EngineError::WeightShape { .. }), "{e}");
    let mut nan = w.clone();
    let mut t = nan.get("c.weight").unwrap().clone();
    t.data[7] = f32::NAN;
    nan.insert("c.weight", t);
    let e = Network::new(3, &[Layer::conv("c", 1, 1)], &nan, opts).err().unwrap();
    assert!(matches!(e, EngineError::NonFinite { .. }), "{e}");
    let net = Network::new(3, &[Layer::conv("c", 1, 0), Layer::MaxPool { size: 3, stride: 2, pad: 0 }], &w, opts).unwrap();
    assert!(net.workspace(1, 4, 4).is_err(), "2x2 after the conv is too small for a 3x3 pool");
    assert!(net.workspace(0, 8, 8).is_err());
    let mut ws = net.workspace(2, 8, 8).unwrap();
    let e = ws.set_rgb_input(&[&[0u8; 10]], [0.0; 3], 1.0).err().unwrap();
    assert!(e.to_string().contains("1 RGB images"), "{e}");
    w.insert("fc.weight", tensor(&mut rng, &[7, 2]));
    let net = Network::new(3, &[Layer::conv("c", 1, 1), Layer::fc("fc")], &w, opts).unwrap();
    assert!(net.workspace(1, 3, 3).is_err(), "36 inputs for a layer of 7");
}

#[test]
fn narrow_layers_match_the_reference() {
    // Layers of at most 4 outputs run as a 1x1 convolution to every tap, then a tap sum:
    // a 3->3 3x3 layer with a fused residual and relu, then the MMOD-like 9x9 scoring layer.
    let mut rng = SeededRng::new(13);
    let mut w = Weights::new();
    conv(&mut w, &mut rng, "n3", 3, 3, 3, true);
    affine(&mut w, &mut rng, "a3", 3);
    conv(&mut w, &mut rng, "n1", 1, 3, 9, true);
    let layers = vec![
        Layer::Residual { main: vec![Layer::conv("n3", 1, 1), Layer::affine("a3")], skip: vec![] },
        Layer::Relu,
        Layer::conv("n1", 1, 4),
    ];
    for isa in Isa::supported() {
        let d = run_both(&layers, &w, 2, 13, 11, EngineOptions { isa, winograd: false }, &mut rng);
        assert!(d < 1e-5, "{isa:?}: relative max diff {d:e}");
        // Taller than one band of the 9x9 layer (bands of about 1 MB of taps), two images.
        let d = run_both(&layers, &w, 2, 70, 64, EngineOptions { isa, winograd: false }, &mut rng);
        assert!(d < 1e-5, "{isa:?} banded: relative max diff {d:e}");
    }
}

#[test]
fn locally_connected_layers_match_the_reference() {
    // DeepFace's shape in small: conv, max pool, then locally connected layers (one with a
    // stride, one without bias) and a fully connected layer.
    let mut rng = SeededRng::new(17);
    let mut w = Weights::new();
    conv(&mut w, &mut rng, "c1", 6, 3, 3, true);
    w.insert("l1.weight", tensor(&mut rng, &[5, 5, 2, 2, 6, 4]));
    w.insert("l1.bias", tensor(&mut rng, &[5, 5, 4]));
    w.insert("l2.weight", tensor(&mut rng, &[2, 2, 1, 1, 4, 5]));
    w.insert("fc.weight", tensor(&mut rng, &[2 * 2 * 5, 7]));
    let layers = vec![
        Layer::conv("c1", 1, 0),
        Layer::Relu,
        Layer::MaxPool { size: 2, stride: 2, pad: 0 },
        Layer::locally_connected("l1", 1),
        Layer::Relu,
        Layer::locally_connected("l2", 3),
        Layer::fc("fc"),
        Layer::Relu,
    ];
    // 14x14 -> 12 -> 6 -> 5 (2x2 windows) -> 2 (1x1 windows, stride 3: rows 0 and 3; row 4
    // is dropped, as a convolution drops it).
    let d = run_both(&layers, &w, 3, 14, 14, EngineOptions::default(), &mut rng);
    assert!(d < 1e-5, "relative max diff {d:e}");
    // Another input size reaches the layer with an extent its weights are not for.
    let net = Network::new(3, &layers, &w, EngineOptions::default()).unwrap();
    let e = net.workspace(1, 16, 16).err().expect("16x16 gives the layer 7x7, not 6x6");
    assert!(e.to_string().contains("locally connected"), "{e}");
    let mut bad = w.clone();
    bad.insert("l1.bias", tensor(&mut rng, &[5, 4]));
    let e = Network::new(3, &layers, &bad, EngineOptions::default()).err().unwrap();
    assert!(matches!(e, EngineError::WeightShape { .. }), "{e}");
}
