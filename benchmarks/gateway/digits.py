"""The model every server serves: StandardScaler + LogisticRegression on sklearn's digits.

Run with the project's venv (it has scikit-learn and joblib): `python digits.py OUT_DIR`.
Writes OUT_DIR/model.joblib and OUT_DIR/rows.json: held-out rows (64 pixels, 0-16) that the
load generator sends, the class the model gives each, and the scikit-learn version. The digits
data ships inside scikit-learn; nothing is downloaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = 256


def train(out: Path) -> None:
    import joblib
    import numpy as np
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
    model.fit(x_train, y_train)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    rows = x_test[:ROWS].astype(np.float32)  # integer pixels: exact in float32 and float64
    (out / "rows.json").write_text(
        json.dumps(
            {
                "scikit_learn": sklearn.__version__,
                "accuracy": float(model.score(x_test, y_test)),
                "rows": rows.tolist(),
                "predictions": model.predict(rows).tolist(),
            }
        )
    )


if __name__ == "__main__":
    train(Path(sys.argv[1]))
