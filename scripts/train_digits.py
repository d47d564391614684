#!/usr/bin/python3
"""Trains the model of examples/predict.c and writes data/digits_model.txt.

Multinomial logistic regression (scikit-learn's LogisticRegression, lbfgs)
on the UCI handwritten digits in data/digits.csv.gz: 1,797 rows of 64
pixel values 0..16 and the label. The inputs are the pixels divided by 16,
exactly what the worker bees compute. It trains on the first 1,200 rows and
reports the accuracy on the other 597 (held out), which it also writes into
the model file's header.

Run with Debian's python3-sklearn (apt-get install python3-sklearn):

    /usr/bin/python3 scripts/train_digits.py [data_dir]

The result is deterministic (lbfgs, fixed random_state), so running it again
rewrites the same file with the same version of scikit-learn.
"""
import gzip
import os
import sys

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

N_TRAIN = 1200
C = 1.0
MAX_ITER = 5000
SEED = 0


def load(path):
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    if rows.shape[1] != 65:
        sys.exit(f"{path}: expected 65 columns, got {rows.shape[1]}")
    return rows[:, :64] / 16.0, rows[:, 64].astype(int)


def write_model(path, model, acc_train, acc_held, n_rows):
    num = repr  # shortest text that reads back as the same double
    with open(path, "w") as f:
        f.write("# beehive digits model: multinomial logistic regression\n")
        f.write(f"# scikit-learn {sklearn.__version__} LogisticRegression("
                f"C={C}, max_iter={MAX_ITER}, random_state={SEED}), lbfgs\n")
        f.write(f"# trained by scripts/train_digits.py on rows 0..{N_TRAIN - 1}"
                f" of data/digits.csv.gz, inputs pixel/16\n")
        f.write(f"# accuracy: train {acc_train:.4f}, held out (rows "
                f"{N_TRAIN}..{n_rows - 1}) {acc_held:.4f}\n")
        f.write("beehive-logreg 1\n")
        f.write(f"classes {len(model.classes_)}\n")
        f.write(f"features {model.coef_.shape[1]}\n")
        f.write("input_scale 0.0625\n")
        f.write("bias " + " ".join(num(float(b)) for b in model.intercept_)
                + "\n")
        for k, w in enumerate(model.coef_):
            f.write(f"weights {model.classes_[k]} "
                    + " ".join(num(float(v)) for v in w) + "\n")


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data")
    x, y = load(os.path.join(data_dir, "digits.csv.gz"))
    model = LogisticRegression(C=C, max_iter=MAX_ITER, random_state=SEED)
    model.fit(x[:N_TRAIN], y[:N_TRAIN])
    if list(model.classes_) != list(range(10)):
        sys.exit(f"unexpected classes {model.classes_}")
    acc_train = model.score(x[:N_TRAIN], y[:N_TRAIN])
    acc_held = model.score(x[N_TRAIN:], y[N_TRAIN:])
    acc_all = model.score(x, y)
    write_model(os.path.join(data_dir, "digits_model.txt"), model,
                acc_train, acc_held, len(y))
    print(f"train {acc_train:.4f}  held out {acc_held:.4f}  "
          f"all {acc_all:.4f}")


if __name__ == "__main__":
    main()
