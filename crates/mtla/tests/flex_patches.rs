//! The patched burn-flex (`vendor/burn-flex`, see its `PATCHED.md`) computes what burn's own ops
//! promise on the paths the patches changed: copies of last-axis slices, `slice_assign` on a
//! buffer that another tensor still holds, and in-place adds large enough to run in parallel.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<Flex, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn values<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
    t.into_data().to_vec().expect("f32 values")
}

/// A slice of the last axis made contiguous (rows copied as runs) holds the sliced values.
#[test]
fn last_axis_slice_copies_its_rows() {
    let (rows, heads, width) = (5, 3, 7);
    let x = tensor(
        (0..rows * heads * width).map(|v| v as f32).collect(),
        [rows, heads, width],
    );
    let part = x.slice(s![.., .., 2..6]).reshape([rows, heads * 4]);
    let expected: Vec<f32> = (0..rows)
        .flat_map(|r| {
            (0..heads).flat_map(move |h| (2..6).map(move |c| (r * heads + h) * width + c))
        })
        .map(|v| v as f32)
        .collect();
    assert_eq!(values(part), expected);
}

/// `slice_assign` writes into its own buffer: a tensor sharing the old one keeps its values.
#[test]
fn slice_assign_leaves_a_shared_buffer_alone() {
    let base = tensor(vec![0.0; 12], [3, 4]);
    let shared = base.clone();
    let written = base.slice_assign(s![1..2, 1..3], tensor(vec![5.0, 6.0], [1, 2]));
    assert_eq!(values(shared), vec![0.0; 12]);
    let mut expected = vec![0.0; 12];
    expected[5] = 5.0;
    expected[6] = 6.0;
    assert_eq!(values(written), expected);
}

/// An in-place add over more elements than the parallel threshold (256K) adds every element.
#[test]
fn large_in_place_add_adds_every_element() {
    let n = 300 * 1024 + 5;
    let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let b: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.5).collect();
    let expected: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let sum = tensor(a, [n]) + tensor(b, [n]);
    assert_eq!(values(sum), expected);
}
