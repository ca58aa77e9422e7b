"""Tests of `model.tflite` run with the LiteRT interpreter.

A conversion can succeed and still produce NaN, lose the weights or need
Flex (Select TF) ops that devices lack, so the numbers are compared with the
SavedModel on the same inputs, for each quantization.
"""

import contextlib
import io
import os
import re

from ai_edge_litert.interpreter import Interpreter
import numpy as np
import pytest
import tensorflow as tf

from tests.export import export_utils
from tfvae import models
from tfvae.export import signatures
from tfvae.export import tflite

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
# Largest |TFLite - SavedModel| on the same input.
TOLERANCE = {"none": 1e-5, "float16": 1e-2, "dynamic_int8": 0.05}
# For `none`, `sample` draws its noise with float transcendental functions
# (log, sqrt, cos) that may round differently on the TFLite kernels.
SAMPLE_TOLERANCE = {"none": 1e-4, "float16": 1e-2, "dynamic_int8": 0.05}


class Converted:
  """One trained model's SavedModel and its TFLite files, loaded once."""

  def __init__(self, trained):
    self.trained = trained
    self.saved_model = tf.saved_model.load(trained.version_dir)
    with open(trained.export.tflite_path, "rb") as f:
      self.content = {"none": f.read()}
    for quantization in QUANTIZATIONS[1:]:
      self.content[quantization] = tflite.convert(
          trained.version_dir, signatures.TFLITE_SIGNATURES, quantization)

  def interpreter(self, quantization):
    return Interpreter(model_content=self.content[quantization])

  def saved(self, signature, **inputs):
    outputs = self.saved_model.signatures[signature](
        **{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


@pytest.fixture(scope="module")
def converted_by_name():
  return {}


@pytest.fixture
def converted(trained, converted_by_name):
  if trained.name not in converted_by_name:
    converted_by_name[trained.name] = Converted(trained)
  return converted_by_name[trained.name]


def _latents(batch_size, seed=0):
  return np.random.default_rng(seed).standard_normal(
      (batch_size, export_utils.LATENT_DIM)).astype(np.float32)


def _images(shape, batch_size, seed=0):
  return np.random.default_rng(seed).uniform(
      size=(batch_size,) + tuple(shape)).astype(np.float32)


def _assert_close(got, want, atol, what):
  assert sorted(got) == sorted(want), what
  for key in want:
    assert got[key].shape == want[key].shape, (what, key)
    assert np.all(np.isfinite(got[key])), (what, key)
    np.testing.assert_allclose(got[key], want[key], rtol=0, atol=atol,
                               err_msg=f"{what} {key}")


def test_signatures_are_sample_decode_encode(converted):
  for quantization in QUANTIZATIONS:
    listed = converted.interpreter(quantization).get_signature_list()
    assert set(listed) == {"sample", "decode", "encode"}, quantization
    assert listed["sample"]["inputs"] == ["num_samples", "seed"]
    assert listed["decode"]["inputs"] == ["z"]
    assert listed["encode"]["inputs"] == ["x"]
    assert sorted(listed["encode"]["outputs"]) == ["mean", "stddev"]


def test_exported_file_is_the_none_conversion(converted):
  assert os.path.basename(converted.trained.export.tflite_path) == (
      "model.tflite")
  assert set(converted.interpreter("none").get_signature_runner(
      "decode").get_output_details()) == set(converted.saved(
          "decode", z=_latents(1)))


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_decode_matches_saved_model(converted, quantization):
  z = _latents(6)
  got = converted.interpreter(quantization).get_signature_runner("decode")(
      z=z)
  _assert_close(got, converted.saved("decode", z=z), TOLERANCE[quantization],
                f"decode {quantization}")


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_encode_matches_saved_model(converted, quantization):
  x = _images(converted.trained.data_shape, 4)
  got = converted.interpreter(quantization).get_signature_runner("encode")(
      x=x)
  _assert_close(got, converted.saved("encode", x=x), TOLERANCE[quantization],
                f"encode {quantization}")


def test_decode_matches_in_memory_model(converted):
  z = _latents(3, seed=5)
  got = converted.interpreter("none").get_signature_runner("decode")(z=z)
  want = {k: v.numpy() for k, v in converted.trained.model.decode(
      tf.constant(z)).items()}
  _assert_close(got, want, TOLERANCE["none"], "decode vs in-memory")


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_sample_images_valid(converted, quantization):
  runner = converted.interpreter(quantization).get_signature_runner("sample")
  shape = converted.trained.data_shape
  for num_samples in (1, 3, 17):
    images = runner(num_samples=np.int32(num_samples),
                    seed=np.int32(4))["images"]
    assert images.shape == (num_samples,) + shape
    assert images.dtype == np.float32
    assert np.all(np.isfinite(images))
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_sample_matches_saved_model_for_several_sizes(converted,
                                                      quantization):
  runner = converted.interpreter(quantization).get_signature_runner("sample")
  for num_samples, seed in ((1, 0), (3, 11), (17, -5), (3, 11), (2, 2**30)):
    got = runner(num_samples=np.int32(num_samples), seed=np.int32(seed))
    want = converted.saved("sample", num_samples=np.int32(num_samples),
                           seed=np.int32(seed))
    _assert_close(got, want, SAMPLE_TOLERANCE[quantization],
                  f"sample n={num_samples} seed={seed} {quantization}")


def test_sample_deterministic_per_seed(converted):
  runner = converted.interpreter("none").get_signature_runner("sample")

  def sample(num_samples, seed):
    return runner(num_samples=np.int32(num_samples),
                  seed=np.int32(seed))["images"].copy()

  first = sample(3, 8)
  sample(17, 8)
  np.testing.assert_array_equal(sample(3, 8), first)
  # Same seed, in a new interpreter.
  np.testing.assert_array_equal(
      converted.interpreter("none").get_signature_runner("sample")(
          num_samples=np.int32(3), seed=np.int32(8))["images"], first)
  # Element i of the noise depends only on (i, seed): a shorter draw is a
  # prefix of a longer one.
  np.testing.assert_array_equal(sample(1, 8), first[:1])
  for other_seed in (9, 7, 8 + 32717, -8):
    other = sample(3, other_seed)
    assert np.max(np.abs(other - first)) > 1e-3, other_seed


def test_decode_after_batch_size_changes(converted):
  runner = converted.interpreter("none").get_signature_runner("decode")
  for batch_size in (1, 5, 2, 8):
    z = _latents(batch_size, seed=batch_size)
    _assert_close(runner(z=z), converted.saved("decode", z=z),
                  TOLERANCE["none"], f"decode batch {batch_size}")


def test_encode_after_batch_size_changes(converted):
  runner = converted.interpreter("none").get_signature_runner("encode")
  for batch_size in (1, 4, 2):
    x = _images(converted.trained.data_shape, batch_size, seed=batch_size)
    _assert_close(runner(x=x), converted.saved("encode", x=x),
                  TOLERANCE["none"], f"encode batch {batch_size}")


def test_resize_tensor_input_and_allocate_tensors(converted):
  """The classic (non-signature) API on the first subgraph."""
  interpreter = converted.interpreter("none")
  input_details = interpreter.get_input_details()
  names = {d["name"] for d in input_details}
  signature = next(
      key for key in ("decode", "encode")
      if {d["name"] for d in interpreter.get_signature_runner(
          key).get_input_details().values()} == names)
  output_details = interpreter.get_signature_runner(
      signature).get_output_details()
  # The first subgraph's outputs are that signature's (Gaussian `loc` and
  # `mean` are one tensor, so compare indices as sets).
  assert {d["index"] for d in interpreter.get_output_details()} == {
      d["index"] for d in output_details.values()}
  for batch_size in (7, 2):
    if signature == "decode":
      inputs = {"z": _latents(batch_size, seed=batch_size)}
    else:
      inputs = {"x": _images(converted.trained.data_shape, batch_size,
                             seed=batch_size)}
    (detail,) = input_details
    (value,) = inputs.values()
    interpreter.resize_tensor_input(detail["index"], value.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    got = {key: interpreter.get_tensor(d["index"])
           for key, d in output_details.items()}
    _assert_close(got, converted.saved(signature, **inputs),
                  TOLERANCE["none"], f"{signature} resized to {batch_size}")


def test_decode_depends_on_z(converted):
  runner = converted.interpreter("none").get_signature_runner("decode")
  means = runner(z=_latents(2, seed=3))["mean"]
  assert np.max(np.abs(means[0] - means[1])) > 1e-3


def test_weights_are_the_trained_ones(converted, tmp_path):
  """A freshly initialised model of the same config decodes differently."""
  trained = converted.trained
  fresh = models.build(trained.config.model, trained.data_shape)
  fresh.build_from_shape()
  saved_model_dir = str(tmp_path / "fresh")
  signatures.build_archive(fresh).write_out(saved_model_dir, verbose=False)
  fresh_content = tflite.convert(saved_model_dir,
                                 signatures.TFLITE_SIGNATURES)
  z = _latents(4, seed=1)
  fresh_mean = Interpreter(model_content=fresh_content).get_signature_runner(
      "decode")(z=z)["mean"]
  trained_mean = converted.interpreter("none").get_signature_runner(
      "decode")(z=z)["mean"]
  assert np.max(np.abs(fresh_mean - trained_mean)) > 1e-2


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_no_flex_ops(converted, quantization):
  content = converted.content[quantization]
  assert b"Flex" not in content
  # The plain LiteRT runtime (no Flex delegate) prepares every signature.
  interpreter = converted.interpreter(quantization)
  for key in interpreter.get_signature_list():
    interpreter.get_signature_runner(key)
  interpreter.allocate_tensors()
  report = io.StringIO()
  with contextlib.redirect_stdout(report):
    tf.lite.experimental.Analyzer.analyze(model_content=content,
                                          gpu_compatibility=False)
  text = report.getvalue()
  ops = set(re.findall(r"Op#\d+ (\w+)\(", text))
  assert ops, text[:2000]
  assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], (
      sorted(ops))
  assert "Flex" not in text


def test_quantized_files_are_smaller(converted):
  sizes = {q: len(c) for q, c in converted.content.items()}
  assert sizes["float16"] < sizes["none"], sizes
  assert sizes["dynamic_int8"] < sizes["none"], sizes
