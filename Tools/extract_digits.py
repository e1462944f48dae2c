#!/usr/bin/env python3
"""Extracts scikit-learn's digits data set (8x8 images, 1797 samples, 10
classes) from the scikit-learn wheel into Tests/Fixtures/digits.npz with a
fixed train/test split (a seed-0 shuffle; its first 297 samples are the test set).

    pip download --no-deps scikit-learn -d /tmp/skl
    python3 Tools/extract_digits.py /tmp/skl/scikit_learn-*.whl

Arrays: train_x, test_x uint8 [N, 64] (pixel values 0..16); train_y, test_y
int32 [N]. The data is BSD-licensed with scikit-learn (UCI ML hand-written
digits, test set of Alpaydin & Kaynak).
"""
import gzip
import io
import os
import sys
import zipfile

import numpy as np

wheel = sys.argv[1]
with zipfile.ZipFile(wheel) as z:
    raw = gzip.decompress(z.read("sklearn/datasets/data/digits.csv.gz"))
data = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float64)
x = data[:, :64].astype(np.uint8)
y = data[:, 64].astype(np.int32)
assert x.shape == (1797, 64) and x.max() == 16 and sorted(set(y.tolist())) == list(range(10))

order = np.random.default_rng(0).permutation(len(y))
test, train = order[:297], order[297:]
out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "digits.npz")
np.savez_compressed(out, train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test])
print("wrote", os.path.normpath(out), "train", len(train), "test", len(test))
