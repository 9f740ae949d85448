//! A network compiled from a layer list: fused steps over a few reusable buffers, and the
//! per-geometry workspace that runs them without allocating.

use crate::conv::{ConvLayer, Indirection};
use crate::kernels::Isa;
use crate::layer::Layer;
use crate::locally_connected::LocallyConnected;
use crate::ops;
use crate::tensor::{Affine, ConvWeights, Shape, Tensor, Weights};
use crate::winograd::{self, WinogradConv};
use crate::EngineError;
use std::sync::OnceLock;

/// How a network is compiled: which micro-kernels, and whether Winograd may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// The instruction set the weights are packed for (must be supported by this CPU).
    pub isa: Isa,
    /// Whether 3x3 stride-1 convolutions may run through Winograd F(2x2,3x3) where it is
    /// faster (batched inputs).
    pub winograd: bool,
}

impl Default for EngineOptions {
    /// The best instruction set of this CPU, Winograd allowed.
    fn default() -> Self {
        EngineOptions { isa: Isa::best(), winograd: true }
    }
}

impl EngineOptions {
    /// The defaults, overridden by `VISAGE_ISA=avx512|avx2|portable` (ignored when this CPU
    /// lacks it) and `VISAGE_WINOGRAD=0`. Programs read this once at start.
    pub fn from_env() -> Self {
        let mut o = Self::default();
        if let Some(isa) = std::env::var("VISAGE_ISA").ok().and_then(|v| Isa::from_name(&v)).filter(|i| i.is_supported()) {
            o.isa = isa;
        }
        if std::env::var("VISAGE_WINOGRAD").is_ok_and(|v| v == "0") {
            o.winograd = false;
        }
        o
    }
}

/// Winograd turns a layer into 16 GEMMs (tiles x Cin x Cout) only as deep as its input
/// channels. Measured on the face ResNet: at batch 32 (8-11M multiply-adds per GEMM in every
/// layer) Winograd everywhere is 1.29x faster; at batch 1 (under 0.35M) it never wins. Below
/// this size per GEMM the direct convolution is used.
const WINOGRAD_MIN_GEMM: usize = 1 << 20;

/// A convolution packed for the direct indirect convolution; where Winograd F(2x2, 3x3)
/// applies, its weights are derived from the direct ones the first time a workspace's plan
/// chooses it (so single-image use never pays for them).
struct Conv {
    direct: ConvLayer,
    winograd_allowed: bool,
    winograd: OnceLock<WinogradConv>,
}

/// What a convolution needs for one input geometry.
enum ConvPlan {
    Direct(Indirection),
    Winograd { input: Shape },
}

impl Conv {
    fn plan(&self, input: Shape) -> ConvPlan {
        let tiles = input.n * input.h.div_ceil(2) * input.w.div_ceil(2);
        let cout = self.direct.out_channels;
        if self.winograd_allowed
            && winograd::applies(self.direct.geometry(), input.h, input.w)
            && tiles * input.c * cout >= WINOGRAD_MIN_GEMM
        {
            self.winograd.get_or_init(|| WinogradConv::from_direct(&self.direct));
            ConvPlan::Winograd { input }
        } else {
            ConvPlan::Direct(self.direct.indirection(input))
        }
    }

    fn run(&self, plan: &ConvPlan, input: &[f32], zero: &[f32], residual: Option<&[f32]>, out: &mut [f32]) {
        match (plan, self.winograd.get()) {
            (ConvPlan::Direct(ind), _) => self.direct.run(ind, input, zero, residual, out),
            (ConvPlan::Winograd { input: s }, Some(w)) => w.run(*s, input, residual, out),
            (ConvPlan::Winograd { .. }, None) => unreachable!("a Winograd plan builds the Winograd weights"),
        }
    }
}

/// A buffer index in the workspace. Slot 0 is the network input.
type Slot = usize;

/// One compiled step.
enum Step {
    Conv { conv: Box<Conv>, input: Slot, residual: Option<Slot>, output: Slot },
    LocallyConnected { layer: Box<LocallyConnected>, relu: bool, input: Slot, output: Slot },
    MaxPool { size: usize, stride: usize, pad: usize, input: Slot, output: Slot },
    AvgPool { size: usize, stride: usize, input: Slot, output: Slot },
    Relu { slot: Slot },
    Copy { input: Slot, output: Slot },
    Affine { gamma: Vec<f32>, beta: Vec<f32>, slot: Slot },
    AddPrev { main: Slot, skip: Slot, relu: bool, output: Slot },
    PooledSkipAdd { x: Slot, main: Slot, relu: bool, output: Slot },
    GlobalAvgPool { input: Slot, output: Slot },
    Fc { weights: Vec<f32>, bias: Option<Vec<f32>>, inputs: usize, outputs: usize, pooled: bool, input: Slot, output: Slot },
}

/// A fully connected layer's `[in][out]` weights, optional bias, and output width.
type FcParams = (Vec<f32>, Option<Vec<f32>>, usize);

/// Hands out buffer slots; a slot is reused once nothing still needs it.
struct Slots {
    users: Vec<usize>,
}

impl Slots {
    fn take(&mut self) -> Slot {
        match self.users.iter().position(|&u| u == 0) {
            Some(s) => {
                self.users[s] = 1;
                s
            }
            None => {
                self.users.push(1);
                self.users.len() - 1
            }
        }
    }
    fn hold(&mut self, s: Slot) {
        self.users[s] += 1;
    }
    fn release(&mut self, s: Slot) {
        self.users[s] -= 1;
    }
}

/// A network ready to run: its layers compiled into fused steps for one instruction set.
pub struct Network {
    options: EngineOptions,
    input_channels: usize,
    steps: Vec<Step>,
    slots: usize,
    output: Slot,
}

/// Buffers and per-layer tables for one input geometry, reused across calls: running a
/// network allocates nothing but the returned outputs.
pub struct Workspace {
    input: Shape,
    output: Shape,
    bufs: Vec<Vec<f32>>,
    zero: Vec<f32>,
    /// Per step: the input shapes it reads, and its convolution plan if any.
    plans: Vec<(Shape, Shape, Option<ConvPlan>)>,
}

impl Workspace {
    /// The input geometry this workspace was built for.
    pub fn input_shape(&self) -> Shape {
        self.input
    }

    /// The output geometry.
    pub fn output_shape(&self) -> Shape {
        self.output
    }

    /// The network input, NHWC, to be filled before [`Network::run`].
    pub fn input_mut(&mut self) -> &mut [f32] {
        let n = self.input.len();
        &mut self.bufs[0][..n]
    }

    /// Fills the input with RGB byte images (`input_shape().per_image()` bytes each, as many
    /// as the batch), normalised as `(pixel - mean[ch]) * scale`.
    pub fn set_rgb_input(&mut self, images: &[&[u8]], mean: [f32; 3], scale: f32) -> Result<(), EngineError> {
        let s = self.input;
        if s.c != 3 || images.len() != s.n {
            return Err(EngineError::Input(format!("{} RGB images for a workspace of {} images of {} channels", images.len(), s.n, s.c)));
        }
        if let Some((i, img)) = images.iter().enumerate().find(|(_, i)| i.len() != s.per_image()) {
            return Err(EngineError::Input(format!("image {i} has {} bytes; {}x{} RGB is {}", img.len(), s.h, s.w, s.per_image())));
        }
        ops::normalize_rgb(images, mean, scale, &mut self.bufs[0]);
        Ok(())
    }
}

fn param<'w>(w: &'w Weights, name: &str) -> Result<&'w Tensor, EngineError> {
    w.get(name).ok_or_else(|| EngineError::MissingWeight(name.to_string()))
}

fn check_shape(name: &str, t: &Tensor, want: &[usize]) -> Result<(), EngineError> {
    if t.shape != want {
        return Err(EngineError::WeightShape { name: name.to_string(), got: t.shape.clone(), want: want.to_vec() });
    }
    if let Some(v) = t.data.iter().find(|v| !v.is_finite()) {
        return Err(EngineError::NonFinite { name: name.to_string(), value: *v });
    }
    Ok(())
}

/// Whether a layer keeps rows and columns as they are, for every input size.
fn keeps_extent(layer: &Layer, weights: &Weights) -> bool {
    match layer {
        Layer::Conv { name, stride, pad } => {
            let k = weights.get(&format!("{name}.weight")).and_then(|t| t.shape.get(2).copied()).unwrap_or(0);
            *stride == 1 && k % 2 == 1 && 2 * pad + 1 == k
        }
        Layer::Affine { .. } | Layer::Relu => true,
        Layer::Residual { main, skip } => main.iter().chain(skip).all(|l| keeps_extent(l, weights)),
        _ => false,
    }
}

struct Compiler<'a> {
    weights: &'a Weights,
    options: EngineOptions,
    slots: Slots,
    steps: Vec<Step>,
}

impl Compiler<'_> {
    /// Compiles `layers` reading `input` (with `channels` channels); the input slot is
    /// released once read. Returns the output slot and its channels. When `fuse_residual` is
    /// given and the sequence ends with a convolution (and its affine), that convolution adds
    /// the residual slot and applies relu if asked, in its epilogue.
    fn sequence(
        &mut self,
        layers: &[Layer],
        mut cur: Slot,
        mut channels: usize,
        fuse_residual: Option<(Slot, bool)>,
    ) -> Result<(Slot, usize), EngineError> {
        let mut i = 0;
        while i < layers.len() {
            match &layers[i] {
                Layer::Conv { name, stride, pad } => {
                    let wname = format!("{name}.weight");
                    let w = param(self.weights, &wname)?;
                    let [out, cin, k, k2] = w.shape[..] else {
                        return Err(EngineError::WeightShape { name: wname, got: w.shape.clone(), want: vec![0, channels, 0, 0] });
                    };
                    check_shape(&wname, w, &[out, channels, k, k])?;
                    if k == 0 || k != k2 || *stride == 0 || out == 0 {
                        return Err(EngineError::Layer(format!("convolution {name}: kernel {k}x{k2}, stride {stride}")));
                    }
                    let bias = match self.weights.get(&format!("{name}.bias")) {
                        Some(b) => {
                            check_shape(&format!("{name}.bias"), b, &[out])?;
                            b.data.clone()
                        }
                        None => vec![0.0; out],
                    };
                    let conv = ConvWeights {
                        out_channels: out,
                        in_channels: cin,
                        kernel: k,
                        stride: *stride,
                        pad: *pad,
                        filters: w.data.clone(),
                        bias,
                    };
                    let mut j = i + 1;
                    let affine = match layers.get(j) {
                        Some(Layer::Affine { name }) => {
                            j += 1;
                            self.affine(name, out)?
                        }
                        _ => Affine::identity(out),
                    };
                    let relu_next = matches!(layers.get(j), Some(Layer::Relu));
                    // The sequence's last convolution takes the residual in its epilogue.
                    let (residual, relu) = match fuse_residual {
                        Some((r, relu_after)) if j == layers.len() => (Some(r), relu_after),
                        _ => (None, relu_next),
                    };
                    if relu_next && residual.is_none() {
                        j += 1;
                    }
                    let direct = ConvLayer::new(self.options.isa, &conv, &affine, relu);
                    let output = self.slots.take();
                    self.steps.push(Step::Conv {
                        conv: Box::new(Conv { direct, winograd_allowed: self.options.winograd, winograd: OnceLock::new() }),
                        input: cur,
                        residual,
                        output,
                    });
                    self.slots.release(cur);
                    if let Some(r) = residual {
                        self.slots.release(r);
                    }
                    cur = output;
                    channels = out;
                    i = j;
                    continue;
                }
                Layer::LocallyConnected { name, stride } => {
                    let layer = self.locally_connected(name, *stride, channels)?;
                    let relu = matches!(layers.get(i + 1), Some(Layer::Relu));
                    let out = layer.out_channels;
                    let output = self.slots.take();
                    self.steps.push(Step::LocallyConnected { layer: Box::new(layer), relu, input: cur, output });
                    self.slots.release(cur);
                    cur = output;
                    channels = out;
                    i += if relu { 2 } else { 1 };
                    continue;
                }
                Layer::Affine { name } => {
                    cur = self.own(cur);
                    let a = self.affine(name, channels)?;
                    self.steps.push(Step::Affine { gamma: a.gamma, beta: a.beta, slot: cur });
                }
                Layer::Relu => {
                    cur = self.own(cur);
                    self.steps.push(Step::Relu { slot: cur });
                }
                Layer::MaxPool { size, stride, pad } => {
                    if *size == 0 || *stride == 0 || *pad >= *size {
                        return Err(EngineError::Layer(format!("max pool {size}x{size}, stride {stride}, pad {pad}")));
                    }
                    let output = self.slots.take();
                    self.steps.push(Step::MaxPool { size: *size, stride: *stride, pad: *pad, input: cur, output });
                    self.slots.release(cur);
                    cur = output;
                }
                Layer::AvgPool { size, stride } => {
                    if *size == 0 || *stride == 0 {
                        return Err(EngineError::Layer(format!("average pool {size}x{size}, stride {stride}")));
                    }
                    let output = self.slots.take();
                    self.steps.push(Step::AvgPool { size: *size, stride: *stride, input: cur, output });
                    self.slots.release(cur);
                    cur = output;
                }
                Layer::GlobalAvgPool => {
                    let pooled_fc = matches!(layers.get(i + 1), Some(Layer::FullyConnected { .. }));
                    if pooled_fc {
                        let Some(Layer::FullyConnected { name }) = layers.get(i + 1) else { unreachable!() };
                        let (weights, bias, outputs) = self.fc(name, channels)?;
                        let output = self.slots.take();
                        self.steps.push(Step::Fc { weights, bias, inputs: channels, outputs, pooled: true, input: cur, output });
                        self.slots.release(cur);
                        cur = output;
                        channels = outputs;
                        i += 2;
                        continue;
                    }
                    let output = self.slots.take();
                    self.steps.push(Step::GlobalAvgPool { input: cur, output });
                    self.slots.release(cur);
                    cur = output;
                }
                Layer::FullyConnected { name } => {
                    // The input width is only known per geometry: checked when planned.
                    let t = param(self.weights, &format!("{name}.weight"))?;
                    let [inputs, _] = t.shape[..] else {
                        return Err(EngineError::WeightShape { name: format!("{name}.weight"), got: t.shape.clone(), want: vec![0, 0] });
                    };
                    let (weights, bias, outputs) = self.fc(name, inputs)?;
                    let output = self.slots.take();
                    self.steps.push(Step::Fc { weights, bias, inputs, outputs, pooled: false, input: cur, output });
                    self.slots.release(cur);
                    cur = output;
                    channels = outputs;
                }
                Layer::Residual { main, .. } if main.is_empty() => {
                    return Err(EngineError::Layer("a residual block with an empty main branch".into()));
                }
                Layer::Residual { main, skip } => {
                    let relu_after = matches!(layers.get(i + 1), Some(Layer::Relu));
                    self.slots.hold(cur); // the skip branch reads the block input too
                    let identity = skip.is_empty();
                    let ends_in_conv = matches!(
                        (main.last(), main.len().checked_sub(2).and_then(|k| main.get(k))),
                        (Some(Layer::Conv { .. }), _) | (Some(Layer::Affine { .. }), Some(Layer::Conv { .. }))
                    );
                    if identity && ends_in_conv && main.iter().all(|l| keeps_extent(l, self.weights)) {
                        // relu(conv(...) + x) in the last convolution's epilogue.
                        let (out, oc) = self.sequence(main, cur, channels, Some((cur, relu_after)))?;
                        if oc != channels {
                            return Err(EngineError::Layer(format!("a residual block maps {channels} channels to {oc}")));
                        }
                        cur = out;
                    } else {
                        let (m, mc) = self.sequence(main, cur, channels, None)?;
                        let output = self.slots.take();
                        if matches!(skip[..], [Layer::AvgPool { size: 2, stride: 2 }]) {
                            self.steps.push(Step::PooledSkipAdd { x: cur, main: m, relu: relu_after, output });
                            self.slots.release(cur);
                        } else if identity {
                            self.steps.push(Step::AddPrev { main: m, skip: cur, relu: relu_after, output });
                            self.slots.release(cur);
                        } else {
                            let (s, _) = self.sequence(skip, cur, channels, None)?;
                            self.steps.push(Step::AddPrev { main: m, skip: s, relu: relu_after, output });
                            self.slots.release(s);
                        }
                        self.slots.release(m);
                        cur = output;
                        channels = mc.max(channels);
                    }
                    i += if relu_after { 2 } else { 1 };
                    continue;
                }
            }
            i += 1;
        }
        Ok((cur, channels))
    }

    /// A slot the next in-place step may overwrite: `cur` itself, or a copy when another
    /// branch still reads it.
    fn own(&mut self, cur: Slot) -> Slot {
        if self.slots.users[cur] == 1 {
            return cur;
        }
        let output = self.slots.take();
        self.steps.push(Step::Copy { input: cur, output });
        self.slots.release(cur);
        output
    }

    fn affine(&self, name: &str, channels: usize) -> Result<Affine, EngineError> {
        let (g, b) = (format!("{name}.gamma"), format!("{name}.beta"));
        let gamma = param(self.weights, &g)?;
        let beta = param(self.weights, &b)?;
        check_shape(&g, gamma, &[channels])?;
        check_shape(&b, beta, &[channels])?;
        Ok(Affine { gamma: gamma.data.clone(), beta: beta.data.clone() })
    }

    /// A locally connected layer's parameters, checked against its `channels` inputs.
    fn locally_connected(&self, name: &str, stride: usize, channels: usize) -> Result<LocallyConnected, EngineError> {
        let wname = format!("{name}.weight");
        let w = param(self.weights, &wname)?;
        let [oh, ow, k, k2, cin, out] = w.shape[..] else {
            return Err(EngineError::WeightShape { name: wname, got: w.shape.clone(), want: vec![0, 0, 0, 0, channels, 0] });
        };
        check_shape(&wname, w, &[oh, ow, k, k, channels, out])?;
        if oh == 0 || ow == 0 || k == 0 || k != k2 || stride == 0 || out == 0 {
            return Err(EngineError::Layer(format!("locally connected {name}: {oh}x{ow} positions, kernel {k}x{k2}, stride {stride}")));
        }
        let bias = match self.weights.get(&format!("{name}.bias")) {
            Some(b) => {
                check_shape(&format!("{name}.bias"), b, &[oh, ow, out])?;
                b.data.clone()
            }
            None => vec![0.0; oh * ow * out],
        };
        Ok(LocallyConnected { out_h: oh, out_w: ow, kernel: k, stride, in_channels: cin, out_channels: out, weights: w.data.clone(), bias })
    }

    /// A fully connected layer's weights, bias and output width.
    fn fc(&self, name: &str, inputs: usize) -> Result<FcParams, EngineError> {
        let wname = format!("{name}.weight");
        let w = param(self.weights, &wname)?;
        let outputs = w.shape.get(1).copied().unwrap_or(0);
        check_shape(&wname, w, &[inputs, outputs])?;
        let bias = match self.weights.get(&format!("{name}.bias")) {
            Some(b) => {
                check_shape(&format!("{name}.bias"), b, &[outputs])?;
                Some(b.data.clone())
            }
            None => None,
        };
        Ok((w.data.clone(), bias, outputs))
    }
}

impl Network {
    /// Compiles `layers` over inputs of `input_channels` channels, with parameters from
    /// `weights`. Missing, misshapen or non-finite parameters are errors naming the tensor.
    pub fn new(input_channels: usize, layers: &[Layer], weights: &Weights, options: EngineOptions) -> Result<Self, EngineError> {
        if !options.isa.is_supported() {
            return Err(EngineError::Unsupported(options.isa.name()));
        }
        let mut c = Compiler { weights, options, slots: Slots { users: vec![1] }, steps: Vec::new() };
        let (output, _) = c.sequence(layers, 0, input_channels, None)?;
        // Slot 0 holds the caller's input and must not be overwritten by a later step.
        let slots = c.slots.users.len();
        Ok(Network { options, input_channels, steps: c.steps, slots, output })
    }

    /// The options it was compiled with.
    pub fn options(&self) -> EngineOptions {
        self.options
    }

    /// Channels of the input.
    pub fn input_channels(&self) -> usize {
        self.input_channels
    }

    /// Plans every step for inputs of `n` images of `h` x `w`; errors when the input is too
    /// small for a layer, or a fully connected layer's width does not match.
    pub fn workspace(&self, n: usize, h: usize, w: usize) -> Result<Workspace, EngineError> {
        let input = Shape { n, h, w, c: self.input_channels };
        if n == 0 || h == 0 || w == 0 {
            return Err(EngineError::Input(format!("empty input {n}x{h}x{w}")));
        }
        let mut shapes: Vec<Shape> = vec![Shape { n: 0, h: 0, w: 0, c: 0 }; self.slots];
        let mut size = vec![0usize; self.slots];
        shapes[0] = input;
        size[0] = input.len();
        let mut max_seg = 1;
        let mut plans = Vec::with_capacity(self.steps.len());
        let too_small =
            |what: &str, s: Shape| EngineError::Input(format!("input {h}x{w} is too small for a {what} (reached {}x{})", s.h, s.w));
        for step in &self.steps {
            let (a, b, plan, out, os) = match step {
                Step::Conv { conv, input, residual, output } => {
                    let s = shapes[*input];
                    let (k, st, p) = conv.direct.geometry();
                    if s.h + 2 * p < k || s.w + 2 * p < k {
                        return Err(too_small("convolution", s));
                    }
                    let os = conv.direct.output_shape(s);
                    if let Some(r) = residual {
                        if shapes[*r] != os {
                            return Err(EngineError::Layer(format!("residual {:?} does not match {:?}", shapes[*r], os)));
                        }
                    }
                    let _ = st;
                    max_seg = max_seg.max(conv.direct.max_seg_len());
                    (s, residual.map_or(s, |r| shapes[r]), Some(conv.plan(s)), *output, os)
                }
                Step::LocallyConnected { layer, input, output, .. } => {
                    let s = shapes[*input];
                    if !layer.accepts(s.h, s.w) {
                        let (eh, ew) = layer.input_extent();
                        return Err(EngineError::Input(format!(
                            "input {h}x{w} gives a locally connected layer {}x{}; its weights are for {eh}x{ew}",
                            s.h, s.w
                        )));
                    }
                    (s, s, None, *output, layer.output_shape(s))
                }
                Step::MaxPool { size: k, stride, pad, input, output } => {
                    let s = shapes[*input];
                    let (Some(oh), Some(ow)) = (ops::pooled_side(s.h, *k, *stride, *pad), ops::pooled_side(s.w, *k, *stride, *pad)) else {
                        return Err(too_small("max pool", s));
                    };
                    (s, s, None, *output, Shape { h: oh, w: ow, ..s })
                }
                Step::AvgPool { size: k, stride, input, output } => {
                    let s = shapes[*input];
                    let (Some(oh), Some(ow)) = (ops::pooled_side(s.h, *k, *stride, 0), ops::pooled_side(s.w, *k, *stride, 0)) else {
                        return Err(too_small("average pool", s));
                    };
                    (s, s, None, *output, Shape { h: oh, w: ow, ..s })
                }
                Step::Copy { input, output } => (shapes[*input], shapes[*input], None, *output, shapes[*input]),
                Step::Relu { slot } | Step::Affine { slot, .. } => (shapes[*slot], shapes[*slot], None, *slot, shapes[*slot]),
                Step::AddPrev { main, skip, output, .. } => {
                    (shapes[*main], shapes[*skip], None, *output, ops::add_prev_shape(shapes[*main], shapes[*skip]))
                }
                Step::PooledSkipAdd { x, main, output, .. } => {
                    let xs = shapes[*x];
                    if xs.h < 2 || xs.w < 2 {
                        return Err(too_small("pooled skip", xs));
                    }
                    let pooled = Shape { h: 1 + (xs.h - 2) / 2, w: 1 + (xs.w - 2) / 2, ..xs };
                    (xs, shapes[*main], None, *output, ops::add_prev_shape(pooled, shapes[*main]))
                }
                Step::GlobalAvgPool { input, output } => {
                    let s = shapes[*input];
                    (s, s, None, *output, Shape { h: 1, w: 1, ..s })
                }
                Step::Fc { inputs, outputs, pooled, input, output, .. } => {
                    let s = shapes[*input];
                    let width = if *pooled { s.c } else { s.per_image() };
                    if width != *inputs {
                        return Err(EngineError::Layer(format!("a fully connected layer of {inputs} inputs gets {width}")));
                    }
                    (s, s, None, *output, Shape { n: s.n, h: 1, w: 1, c: *outputs })
                }
            };
            shapes[out] = os;
            size[out] = size[out].max(os.len());
            plans.push((a, b, plan));
        }
        Ok(Workspace {
            input,
            output: shapes[self.output],
            bufs: size.iter().map(|&n| vec![0.0; n]).collect(),
            zero: vec![0.0; max_seg],
            plans,
        })
    }

    /// Runs the network on the workspace's input (see [`Workspace::input_mut`] and
    /// [`Workspace::set_rgb_input`]); returns the output of each image, flattened NHWC.
    pub fn run(&self, ws: &mut Workspace) -> Vec<Vec<f32>> {
        let Workspace { bufs, zero, plans, output, .. } = ws;
        for (step, (a, b, plan)) in self.steps.iter().zip(plans.iter()) {
            match step {
                Step::Conv { conv, input, residual, output } => {
                    let plan = plan.as_ref().expect("a convolution step has a plan");
                    match residual {
                        // A block whose only convolution adds the block's own input.
                        Some(r) if r == input => {
                            let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                            conv.run(plan, i, zero, Some(i), o);
                        }
                        Some(r) => {
                            let [i, r, o] = bufs.get_disjoint_mut([*input, *r, *output]).expect("distinct slots");
                            conv.run(plan, i, zero, Some(r), o);
                        }
                        None => {
                            let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                            conv.run(plan, i, zero, None, o);
                        }
                    }
                }
                Step::LocallyConnected { layer, relu, input, output } => {
                    let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                    layer.run(*a, i, *relu, o);
                }
                Step::MaxPool { size, stride, pad, input, output } => {
                    let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                    ops::max_pool(*a, i, *size, *stride, *pad, o);
                }
                Step::AvgPool { size, stride, input, output } => {
                    let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                    ops::avg_pool(*a, i, *size, *stride, o);
                }
                Step::Copy { input, output } => {
                    let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                    o[..a.len()].copy_from_slice(&i[..a.len()]);
                }
                Step::Relu { slot } => ops::relu(&mut bufs[*slot][..a.len()]),
                Step::Affine { gamma, beta, slot } => ops::affine(&mut bufs[*slot][..a.len()], gamma, beta),
                Step::AddPrev { main, skip, relu, output } => {
                    let [m, s, o] = bufs.get_disjoint_mut([*main, *skip, *output]).expect("distinct slots");
                    ops::add_prev(*a, m, *b, s, *relu, o);
                }
                Step::PooledSkipAdd { x, main, relu, output } => {
                    let [x, m, o] = bufs.get_disjoint_mut([*x, *main, *output]).expect("distinct slots");
                    ops::pooled_skip_add(*a, x, *b, m, *relu, o);
                }
                Step::GlobalAvgPool { input, output } => {
                    let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                    ops::global_avg_pool(*a, i, o);
                }
                Step::Fc { weights, bias, outputs, pooled, input, output, .. } => {
                    let [i, o] = bufs.get_disjoint_mut([*input, *output]).expect("distinct slots");
                    if *pooled {
                        ops::pool_and_project(*a, i, weights, bias.as_deref(), *outputs, o);
                    } else {
                        ops::fully_connected(*a, i, weights, bias.as_deref(), *outputs, o);
                    }
                }
            }
        }
        let per = output.per_image();
        bufs[self.output][..output.len()].chunks_exact(per).map(<[f32]>::to_vec).collect()
    }
}
