//! Moving plain `f32` slices in and out of burn tensors, and the training device.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// The device training runs on: Flex (burn's pure-Rust CPU backend) with autodiff.
pub fn train_device() -> Device {
    Device::flex().autodiff()
}

/// A `[rows, cols]` float tensor from row-major values.
pub fn matrix(values: &[f32], rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    assert_eq!(values.len(), rows * cols, "{} values for a {rows} x {cols} matrix", values.len());
    Tensor::from_data(TensorData::new(values.to_vec(), [rows, cols]), device)
}

/// A 1-d float tensor.
pub fn vector(values: &[f32], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

/// A 1-d integer tensor of indices.
pub fn indices(values: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = values.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [values.len()]), device)
}

/// A tensor's values as `f32`, row-major (any float dtype is converted).
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().expect("a readable float tensor")
}

/// A one-element tensor's value.
pub fn scalar(t: Tensor<1>) -> f32 {
    let v = values(t);
    assert_eq!(v.len(), 1, "a scalar tensor, got {} values", v.len());
    v[0]
}
