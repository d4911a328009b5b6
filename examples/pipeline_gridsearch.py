"""fastgru inside scikit-learn: a pipeline on lag windows, tuned with GridSearchCV over
time-ordered folds, compared with a linear model on the same windows.

    python examples/pipeline_gridsearch.py [--epochs 15]
"""

import argparse

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from fastgru import GRURegressor, load_temperature, make_windows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args(argv)

    temps = load_temperature()["Temp"].to_numpy()[-args.rows :]
    X, y = make_windows(temps, window=30)
    X2, y1 = X[:, :, 0], y[:, 0]  # 2-D lag windows: one feature per time step
    split = int(0.9 * len(X2))

    # Scale the inputs and the target: a network's outputs start near 0, and a few epochs
    # at a learning rate of 1e-3 do not reach temperatures around 20 deg C unscaled.
    pipe = make_pipeline(MinMaxScaler(), GRURegressor(epochs=args.epochs, random_state=0))
    model = TransformedTargetRegressor(pipe, transformer=MinMaxScaler())
    grid = GridSearchCV(model, {"regressor__gruregressor__units": [16, (16, 16)]},
                        cv=TimeSeriesSplit(n_splits=3), n_jobs=2)  # fmt: skip
    grid.fit(X2[:split], y1[:split])
    ridge = Ridge().fit(X2[:split], y1[:split])

    def rmse(model):
        return float(np.sqrt(np.mean((model.predict(X2[split:]) - y1[split:]) ** 2)))

    naive = float(np.sqrt(np.mean((X2[split:, -1] - y1[split:]) ** 2)))
    print(f"best units: {grid.best_params_['regressor__gruregressor__units']}")
    print(f"held-out RMSE  GRU {rmse(grid.best_estimator_):.3f}  ridge {rmse(ridge):.3f}  "
          f"naive {naive:.3f} (deg C)")  # fmt: skip


if __name__ == "__main__":
    main()
