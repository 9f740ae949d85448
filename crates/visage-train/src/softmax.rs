//! Softmax training over identities (DeepFace's recipe): a linear classifier
//! over the training people on top of the embedding layer's raw outputs, trained with
//! softmax cross-entropy; the embedding is the layer under the classifier, L2-normalised at
//! use, and the classifier is thrown away after training.

use crate::embedder_net::EmbedderNet;
use crate::losses::{softmax_cross_entropy, Reduction};
use crate::tensors::values;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::HashMap;

/// The embedder with a classifier over `classes` identities on top.
#[derive(Module, Debug)]
pub struct IdentityClassifier {
    /// The embedder being trained.
    pub net: EmbedderNet,
    /// Logits over the training identities from the embedding layer's raw outputs.
    pub classifier: Linear,
}

/// A batch's softmax loss and accuracy.
pub struct SoftmaxOutput {
    /// The mean cross-entropy (the value to differentiate).
    pub loss: Tensor<1>,
    /// The mean cross-entropy's value.
    pub loss_value: f32,
    /// The fraction of rows whose largest logit is their identity's.
    pub accuracy: f32,
}

impl IdentityClassifier {
    /// A classifier over `classes` identities (burn's default initialisation) on `net`.
    pub fn new(net: EmbedderNet, dim: usize, classes: usize, device: &Device) -> Self {
        IdentityClassifier { net, classifier: LinearConfig::new(dim, classes).init(device) }
    }

    /// The loss and accuracy of normalised chips `x` `[n, 3, h, w]` with identities `labels`.
    pub fn forward(&self, x: Tensor<4>, labels: &[usize]) -> SoftmaxOutput {
        let logits = self.classifier.forward(self.net.scores(x));
        let [b, classes] = logits.dims();
        let l = values(logits.clone());
        let correct = (0..b)
            .filter(|&r| {
                let row = &l[r * classes..(r + 1) * classes];
                let best = row.iter().enumerate().max_by(|a, c| a.1.total_cmp(c.1)).map(|m| m.0);
                best == Some(labels[r])
            })
            .count();
        let loss = softmax_cross_entropy(logits, labels, Reduction::Mean);
        let loss_value = values(loss.clone())[0];
        SoftmaxOutput { loss, loss_value, accuracy: correct as f32 / b as f32 }
    }

    /// The classifier's tensors, to keep in a checkpoint beside the embedder's.
    pub fn classifier_tensors(&self) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
        let w = self.classifier.weight.val();
        let mut t = HashMap::new();
        t.insert("classifier.weight".to_string(), (w.dims().to_vec(), values(w)));
        if let Some(b) = &self.classifier.bias {
            let b = b.val();
            t.insert("classifier.bias".to_string(), (b.dims().to_vec(), values(b)));
        }
        t
    }

    /// Restores the classifier from a checkpoint's tensors; false when they are absent or do
    /// not fit (the classifier then stays as initialised).
    pub fn load_classifier(&mut self, tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>, device: &Device) -> bool {
        let want = self.classifier.weight.val().dims();
        let (Some((ws, w)), Some((bs, b))) = (tensors.get("classifier.weight"), tensors.get("classifier.bias")) else { return false };
        if ws.as_slice() != want.as_slice() || bs.as_slice() != [want[1]] {
            return false;
        }
        self.classifier.weight = Param::from_tensor(Tensor::<2>::from_data(TensorData::new(w.clone(), [ws[0], ws[1]]), device));
        self.classifier.bias = Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(b.clone(), [bs[0]]), device)));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cnn::SmallCnn;
    use crate::tensors::train_device;
    use visage_embed::CnnSpec;

    #[test]
    fn the_loss_is_the_cross_entropy_of_the_classifier_on_the_raw_embedding() {
        let dev = train_device();
        dev.seed(3);
        let spec = CnnSpec { channels: vec![4], dim: 3 };
        let m = IdentityClassifier::new(EmbedderNet::Small(SmallCnn::new(&spec, &dev)), 3, 5, &dev);
        let x = Tensor::<4>::from_data(TensorData::new((0..2 * 3 * 8 * 8).map(|i| ((i % 7) as f32 - 3.0) / 3.0).collect::<Vec<_>>(), [2, 3, 8, 8]), &dev);
        let out = m.forward(x.clone(), &[1, 4]);
        // By hand from the logits.
        let l = values(m.classifier.forward(m.net.scores(x)));
        let ce = |row: &[f32], k: usize| {
            let mx = row.iter().cloned().fold(f32::MIN, f32::max);
            let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f32>().ln();
            lse - row[k]
        };
        let want = (ce(&l[0..5], 1) + ce(&l[5..10], 4)) / 2.0;
        assert!((out.loss_value - want).abs() < 1e-5, "{} vs {want}", out.loss_value);
        assert!([0.0, 0.5, 1.0].contains(&out.accuracy));
        // The classifier survives a checkpoint.
        let t = m.classifier_tensors();
        let mut other = IdentityClassifier::new(EmbedderNet::Small(SmallCnn::new(&spec, &dev)), 3, 5, &dev);
        assert!(other.load_classifier(&t, &dev));
        assert_eq!(values(other.classifier.weight.val()), t["classifier.weight"].1);
        let mut wrong = IdentityClassifier::new(EmbedderNet::Small(SmallCnn::new(&spec, &dev)), 3, 6, &dev);
        assert!(!wrong.load_classifier(&t, &dev), "a classifier over other people is not restored");
    }
}
